// The gateway's HTTP API (docs/gateway.md): JSON GETs and POSTs, websocket URLs, the token,
// and the backoff between reconnection attempts.

export const TOKEN = new URLSearchParams(window.location.search).get("token") || "";

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function apiGet(path) {
  const headers = { Accept: "application/json" };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = body.detail || body.error || detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new HttpError(response.status, `${response.status} ${detail}`);
  }
  return response.json();
}

/**
 * POST a JSON body; resolves to `{ status, body }` for any answer with a JSON body (a 400
 * names its problems there), throws HttpError for an answer without one.
 */
export async function apiPost(path, document) {
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(document), cache: "no-store" });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new HttpError(response.status, `${response.status} ${response.statusText}`);
  }
  return { status: response.status, body: body && typeof body === "object" ? body : {} };
}

/** ws(s):// URL of a gateway path; the token goes in the query (browsers cannot set headers). */
export function wsUrl(path, query = {}) {
  const url = new URL(path, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
  if (TOKEN) url.searchParams.set("token", TOKEN);
  return url.toString();
}

/** Tell an auth failure (which a browser websocket cannot see) from a network problem. */
export async function probeAuth() {
  try {
    await apiGet("/api/experiments?limit=1");
    return null;
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
      return TOKEN
        ? `token refused (HTTP ${error.status})`
        : "not authorised: open the viewer with ?token=YOUR_TOKEN";
    }
    return null;
  }
}

export function backoff(attempt) {
  return Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
}
