"""Google's own Gmail client (google-api-python-client and google-auth from PyPI, unpatched)
against the mailpki emulator: what another team's CI does with it. The library's bundled
discovery document builds every request; the service account key file the emulator wrote
gives the token endpoint. Prints one JSON object of what came back, for the Rust test to judge.

Usage: gmail_python_client.py URL KEY_FILE USER P12 P12_PASSWORD KEYPAIR_REQUEST_JSON
"""

import base64
import json
import sys
import urllib.request

from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

BASIC = "https://www.googleapis.com/auth/gmail.settings.basic"


def advance_clock(url, days):
    """The emulator's admin API (not Google's): lets a disabled key pair age."""
    request = urllib.request.Request(
        f"{url}/admin/clock",
        data=json.dumps({"advance_seconds": days * 86400}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).read()


def main():
    url, key_file, user, p12_path, p12_password, keypair_request = sys.argv[1:7]
    credentials = service_account.Credentials.from_service_account_file(
        key_file, scopes=[BASIC], subject=user
    )
    gmail = build(
        "gmail",
        "v1",
        credentials=credentials,
        client_options={"api_endpoint": url},
        static_discovery=True,
    )
    settings = gmail.users().settings()
    out = {}

    send_as = settings.sendAs()
    out["send_as"] = [s["sendAsEmail"] for s in send_as.list(userId="me").execute()["sendAs"]]
    out["send_as_get"] = send_as.get(userId="me", sendAsEmail=user).execute()["sendAsEmail"]

    smime = send_as.smimeInfo()
    with open(p12_path, "rb") as f:
        p12 = base64.urlsafe_b64encode(f.read()).decode()
    inserted = smime.insert(
        userId="me",
        sendAsEmail=user,
        body={"pkcs12": p12, "encryptedKeyPassword": p12_password},
    ).execute()
    sid = inserted["id"]
    listed = smime.list(userId="me", sendAsEmail=user).execute().get("smimeInfo", [])
    out["smime_list"] = [s["id"] for s in listed]
    out["smime_get"] = smime.get(userId="me", sendAsEmail=user, id=sid).execute()["id"]
    smime.setDefault(userId="me", sendAsEmail=user, id=sid).execute()
    got = smime.get(userId="me", sendAsEmail=user, id=sid).execute()
    out["smime_default"] = got.get("isDefault", False)
    smime.delete(userId="me", sendAsEmail=user, id=sid).execute()
    after = smime.list(userId="me", sendAsEmail=user).execute().get("smimeInfo", [])
    out["smime_after_delete"] = len(after)

    cse = settings.cse()
    with open(keypair_request) as f:
        body = json.load(f)
    created = cse.keypairs().create(userId="me", body=body).execute()
    kp = created["keyPairId"]
    out["keypair_created"] = kp
    out["keypair_get"] = cse.keypairs().get(userId="me", keyPairId=kp).execute()["keyPairId"]
    pages, token = [], None
    while True:
        page = cse.keypairs().list(userId="me", pageSize=1, pageToken=token).execute()
        pages.append([k["keyPairId"] for k in page.get("cseKeyPairs", [])])
        token = page.get("nextPageToken")
        if not token:
            break
    out["keypair_pages"] = pages

    identities = cse.identities()
    identities.create(userId="me", body={"emailAddress": user, "primaryKeyPairId": kp}).execute()
    out["identity_get"] = identities.get(userId="me", cseEmailAddress=user).execute()
    out["identity_list"] = [
        i["emailAddress"] for i in identities.list(userId="me").execute().get("cseIdentities", [])
    ]
    patched = identities.patch(
        userId="me", emailAddress=user, body={"emailAddress": user, "primaryKeyPairId": kp}
    ).execute()
    out["identity_patched"] = patched.get("primaryKeyPairId")
    identities.delete(userId="me", cseEmailAddress=user).execute()

    keypairs = cse.keypairs()
    out["disabled"] = keypairs.disable(userId="me", keyPairId=kp).execute()["enablementState"]
    out["enabled"] = keypairs.enable(userId="me", keyPairId=kp).execute()["enablementState"]
    keypairs.disable(userId="me", keyPairId=kp).execute()
    try:
        keypairs.obliterate(userId="me", keyPairId=kp).execute()
        out["obliterate_too_soon"] = None
    except HttpError as e:
        out["obliterate_too_soon"] = e.resp.status
    advance_clock(url, 31)
    keypairs.obliterate(userId="me", keyPairId=kp).execute()
    out["obliterated"] = kp not in [
        k["keyPairId"] for k in keypairs.list(userId="me").execute().get("cseKeyPairs", [])
    ]

    try:
        keypairs.get(userId="me", keyPairId="no-such-key-pair").execute()
        out["error"] = None
    except HttpError as e:
        out["error"] = {"status": e.resp.status, "reason": e.reason}

    print(json.dumps(out))


if __name__ == "__main__":
    main()
