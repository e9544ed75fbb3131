"""Gets a token from the emulator with MSAL's confidential client and lists topics with it.

Reads HDI_BASE_URL (the proxy), HDI_AUTHORITY_URL (Entra; defaults to HDI_BASE_URL), HDI_TENANT, HDI_CLIENT_ID, HDI_CLIENT_SECRET and HDI_SCOPE; the caller
points REQUESTS_CA_BUNDLE and SSL_CERT_FILE at the emulator's ca.pem. Prints one JSON line.
"""

import json
import os
import sys

import msal
import requests


def main() -> int:
    base = os.environ["HDI_BASE_URL"]
    tenant = os.environ["HDI_TENANT"]
    scope = os.environ["HDI_SCOPE"]
    authority = f"{os.environ.get('HDI_AUTHORITY_URL', base)}/{tenant}"

    app = msal.ConfidentialClientApplication(
        os.environ["HDI_CLIENT_ID"],
        client_credential=os.environ["HDI_CLIENT_SECRET"],
        authority=authority,
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[scope])
    if "access_token" not in result:
        print(json.dumps({"token_error": result.get("error"), "codes": result.get("error_codes")}))
        return 1
    second = app.acquire_token_for_client(scopes=[scope])

    topics = requests.get(
        f"{base}/v1/metadata/topics",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        timeout=10,
    )

    wrong = msal.ConfidentialClientApplication(
        os.environ["HDI_CLIENT_ID"],
        client_credential="wrong-secret",
        authority=authority,
        instance_discovery=False,
    ).acquire_token_for_client(scopes=[scope])

    print(
        json.dumps(
            {
                "expires_in": result.get("expires_in"),
                "cached": second.get("token_source") == "cache"
                or second.get("access_token") == result["access_token"],
                "topics_status": topics.status_code,
                "topics": topics.json(),
                "wrong_secret_error": wrong.get("error"),
                "wrong_secret_codes": wrong.get("error_codes"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
