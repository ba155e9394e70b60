// The HTTP routes of docs/protocol.md section 1, and the token kept for the tab's session.

const STORE_KEY = "chat.session";

export class AuthError extends Error {}

async function post(path, body) {
  let response;
  try {
    response = await fetch(new URL(path, document.baseURI), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new AuthError("The server cannot be reached. Check the connection and try again.");
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    // A proxy's error page: no JSON body.
  }
  if (response.ok) return data;
  throw new AuthError(explain(response, data));
}

function explain(response, data) {
  switch (data.reason) {
    case "invalid_credentials":
      return "Wrong username or password.";
    case "banned":
      return `This account is banned (${data.error ?? "banned"}).`;
    case "rate_limited": {
      const seconds = Number(response.headers.get("retry-after")) || 60;
      return `Too many attempts. Try again in ${seconds} s.`;
    }
    case "username_taken":
      return "That username is taken.";
    case "invalid_username":
      return "A username is 3 to 32 letters, digits, '_', '.' or '-'.";
    case "weak_password":
      return "A password is 8 to 128 characters.";
    default:
      if ([502, 503, 504].includes(response.status)) {
        return "The server cannot be reached. Try again in a moment.";
      }
      return data.error ?? `The server answered ${response.status}.`;
  }
}

/** `{token, username, role, expires_at}` */
export async function login(username, password) {
  return post("auth/login", { username, password });
}

/** Registers, then logs the new user in. */
export async function register(username, password) {
  await post("auth/register", { username, password });
  return login(username, password);
}

export function saveSession(session) {
  sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
}

export function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
    if (session && session.expires_at * 1000 > Date.now()) return session;
  } catch {
    // A damaged entry: log in again.
  }
  sessionStorage.removeItem(STORE_KEY);
  return null;
}

export function clearSession() {
  sessionStorage.removeItem(STORE_KEY);
}
