"""The URLs the server hands to phones and people, built from JEBOL_PUBLIC_URL."""


def collect_url(public_url: str, token: str, project_id: int) -> str:
    """The server URL ODK Collect is configured with: the app-user key travels in the path."""
    return f"{public_url}/v1/key/{token}/projects/{project_id}"


def web_form_url(public_url: str, token: str) -> str:
    """The officer's offline web form (a link or QR code opened in a phone browser)."""
    return f"{public_url}/f/{token}/"
