//! Message templates: built in, each part overridable by a file in the
//! operator's template folder (`NAME.subject`, `NAME.txt`, `NAME.html`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use super::Rendered;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    RegisterCode,
    LoginCode,
    ResetCode,
    AccountExists,
    CodesLocked,
}

const ALL: [Template; 5] = [
    Template::RegisterCode,
    Template::LoginCode,
    Template::ResetCode,
    Template::AccountExists,
    Template::CodesLocked,
];

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::RegisterCode => "register_code",
            Template::LoginCode => "login_code",
            Template::ResetCode => "reset_code",
            Template::AccountExists => "account_exists",
            Template::CodesLocked => "codes_locked",
        }
    }

    fn builtin(self) -> [&'static str; 3] {
        macro_rules! parts {
            ($name:literal) => {
                [
                    include_str!(concat!("../../templates/", $name, ".subject")),
                    include_str!(concat!("../../templates/", $name, ".txt")),
                    include_str!(concat!("../../templates/", $name, ".html")),
                ]
            };
        }
        match self {
            Template::RegisterCode => parts!("register_code"),
            Template::LoginCode => parts!("login_code"),
            Template::ResetCode => parts!("reset_code"),
            Template::AccountExists => parts!("account_exists"),
            Template::CodesLocked => parts!("codes_locked"),
        }
    }
}

pub struct Templates(HashMap<Template, [String; 3]>);

impl Templates {
    /// The built-in templates, with any part found in `dir` replacing its default.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        for template in ALL {
            let mut parts = template.builtin().map(str::to_owned);
            if let Some(dir) = dir {
                for (part, ext) in parts.iter_mut().zip(["subject", "txt", "html"]) {
                    let path = dir.join(format!("{}.{ext}", template.name()));
                    if path.exists() {
                        *part = std::fs::read_to_string(&path)
                            .with_context(|| format!("cannot read template {}", path.display()))?;
                    }
                }
            }
            map.insert(template, parts);
        }
        Ok(Self(map))
    }

    /// Fills `{{name}}` placeholders; values are HTML-escaped in the HTML part.
    pub fn render(&self, template: Template, vars: &[(&str, &str)]) -> Rendered {
        let empty = [String::new(), String::new(), String::new()];
        let [subject, text, html] = self.0.get(&template).unwrap_or(&empty);
        let fill = |body: &str, escape: bool| {
            vars.iter().fold(body.to_owned(), |out, (name, value)| {
                let value = if escape {
                    escape_html(value)
                } else {
                    (*value).to_owned()
                };
                out.replace(&format!("{{{{{name}}}}}"), &value)
            })
        };
        Rendered {
            subject: fill(subject.trim(), false),
            text: fill(text, false),
            html: fill(html, true),
        }
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_builtin_with_escaping() {
        let templates = Templates::load(None).unwrap();
        for template in ALL {
            let out = templates.render(
                template,
                &[
                    ("code", "0042"),
                    ("email", "a<b@example.com"),
                    ("issuer", "x"),
                    ("minutes", "5"),
                    ("hours", "24"),
                ],
            );
            assert!(!out.subject.is_empty());
            assert!(!out.text.contains("{{"), "{}", template.name());
            assert!(!out.html.contains("a<b"), "{}", template.name());
        }
        let code = templates.render(Template::LoginCode, &[("code", "0042")]);
        assert!(code.text.contains("code is: 0042"));
    }

    #[test]
    fn files_in_the_template_folder_override_parts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("login_code.subject"), "Code {{code}}").unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let out = templates.render(Template::LoginCode, &[("code", "1234")]);
        assert_eq!(out.subject, "Code 1234");
        assert!(out.text.contains("1234"));
    }
}
