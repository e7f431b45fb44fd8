// The documented JavaScript client (reference/complete-login-flow.txt), unchanged
// but for its base URL and for pointing createResponse at /v1/auth/me.
// Usage: node freddy_auth.mjs BASE_URL EMAIL PASSWORD; reads the emailed code on
// stdin and prints one JSON line per API result.
import readline from "node:readline";

class FreddyAuth {
  constructor() {
    this.baseUrl = `${process.argv[2]}/v1`;
    this.accessToken = null;
    this.refreshToken = null;
  }

  async login(emailOrUsername, password) {
    const response = await fetch(`${this.baseUrl}/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        email_or_username: emailOrUsername,
        password: password
      })
    });
    if (!response.ok) throw new Error("Login failed");
    const data = await response.json();
    return data.email_key;
  }

  async verify(emailKey, verificationCode) {
    const response = await fetch(`${this.baseUrl}/auth/verify`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        email_key: emailKey,
        verification_code: verificationCode
      })
    });
    if (!response.ok) throw new Error("Verification failed");
    const data = await response.json();
    this.accessToken = data.token;
    this.refreshToken = data.refreshToken;
    return data;
  }

  async refresh() {
    if (!this.refreshToken) {
      throw new Error("No refresh token available");
    }
    const response = await fetch(`${this.baseUrl}/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: this.refreshToken })
    });
    if (!response.ok) throw new Error("Token refresh failed");
    const data = await response.json();
    this.accessToken = data.token;
    return data;
  }

  getHeaders() {
    if (!this.accessToken) {
      throw new Error("Not authenticated");
    }
    return {
      "Authorization": `Bearer ${this.accessToken}`,
      "Content-Type": "application/json"
    };
  }

  async createResponse(model, messages) {
    let response = await fetch(`${this.baseUrl}/auth/me`, {
      method: "POST",
      headers: this.getHeaders(),
      body: JSON.stringify({ model, messages })
    });
    // Auto-refresh on 401
    if (response.status === 401) {
      await this.refresh();
      response = await fetch(`${this.baseUrl}/auth/me`, {
        method: "POST",
        headers: this.getHeaders(),
        body: JSON.stringify({ model, messages })
      });
    }
    if (!response.ok) throw new Error("API request failed");
    return response.json();
  }
}

const input = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => input.once("line", resolve));

const auth = new FreddyAuth();
const emailKey = await auth.login(process.argv[3], process.argv[4]);
console.log("Check your email for verification code");
const verificationCode = parseInt(await nextLine(), 10);
await auth.verify(emailKey, verificationCode);
console.log(JSON.stringify(await auth.createResponse("gpt-4", [{ role: "user", content: "Hello!" }])));
// An access token the server refuses: the client refreshes and retries.
auth.accessToken = "expired";
console.log(JSON.stringify(await auth.createResponse("gpt-4", [{ role: "user", content: "Hello again!" }])));
input.close();
