"""The documented Python client (reference/complete-login-flow.txt), unchanged
but for its base URL and for pointing create_response at /v1/auth/me.

Usage: freddy_auth.py BASE_URL EMAIL PASSWORD; reads the emailed code on stdin
and prints one JSON line per API result.
"""
import json
import sys
from typing import Optional

import requests


class FreddyAuth:
    def __init__(self):
        self.base_url = sys.argv[1] + "/v1"
        self.access_token: Optional[str] = None
        self.refresh_token: Optional[str] = None

    def login(self, email_or_username: str, password: str) -> str:
        """Step 1: Login and get email_key"""
        response = requests.post(
            f"{self.base_url}/auth/login",
            json={
                "email_or_username": email_or_username,
                "password": password
            }
        )
        response.raise_for_status()
        data = response.json()
        return data["email_key"]

    def verify(self, email_key: str, verification_code: int):
        """Step 2: Verify email code and store tokens"""
        response = requests.post(
            f"{self.base_url}/auth/verify",
            json={
                "email_key": email_key,
                "verification_code": verification_code
            }
        )
        response.raise_for_status()
        data = response.json()
        self.access_token = data["token"]
        self.refresh_token = data["refreshToken"]
        return data

    def refresh(self):
        """Step 4: Refresh access token"""
        if not self.refresh_token:
            raise ValueError("No refresh token available")
        response = requests.post(
            f"{self.base_url}/auth/refresh",
            json={"refresh_token": self.refresh_token}
        )
        response.raise_for_status()
        data = response.json()
        self.access_token = data["token"]
        return data

    def get_headers(self) -> dict:
        """Get headers for authenticated requests"""
        if not self.access_token:
            raise ValueError("Not authenticated. Call login() and verify() first.")
        return {
            "Authorization": f"Bearer {self.access_token}",
            "Content-Type": "application/json"
        }

    def create_response(self, model: str, messages: list):
        """Step 3: Make authenticated API request"""
        response = requests.post(
            f"{self.base_url}/auth/me",
            headers=self.get_headers(),
            json={"model": model, "messages": messages}
        )
        # Auto-refresh on 401
        if response.status_code == 401:
            self.refresh()
            response = requests.post(
                f"{self.base_url}/auth/me",
                headers=self.get_headers(),
                json={"model": model, "messages": messages}
            )
        response.raise_for_status()
        return response.json()


auth = FreddyAuth()
email_key = auth.login(sys.argv[2], sys.argv[3])
print("Check your email for verification code", flush=True)
verification_code = int(input("Enter verification code: "))
auth.verify(email_key, verification_code)
result = auth.create_response(model="gpt-4", messages=[{"role": "user", "content": "Hello!"}])
print(json.dumps(result), flush=True)
# An access token the server refuses: the client refreshes and retries.
auth.access_token = "expired"
result = auth.create_response(model="gpt-4", messages=[{"role": "user", "content": "Hello again!"}])
print(json.dumps(result), flush=True)
