// The v1 API as the console uses it: bearer token from local storage, JSON errors as ApiError.

const TOKEN_KEY = "casebook.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) || "",
  set: (t) => (t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY)),
};

function headers(extra = {}) {
  const t = token.get();
  return t ? { Authorization: `Bearer ${t}`, ...extra } : extra;
}

async function errorOf(r) {
  try {
    const body = await r.json();
    if (body && body.error) return new ApiError(r.status, body.error.code, body.error.message);
  } catch (_) {
    /* not JSON */
  }
  return new ApiError(r.status, `http_${r.status}`, r.statusText);
}

/** One call: `api("GET", "/v1/me")`; resolves to the JSON body (null for 204), rejects with ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network_error", "the platform did not answer");
  }
  if (!r.ok) throw await errorOf(r);
  if (r.status === 204) return null;
  const type = r.headers.get("content-type") || "";
  return type.includes("json") ? r.json() : r.text();
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);

/** Every page of a paginated list (`items` + `next_cursor`), up to `max` items. */
export async function all(path, max = 500) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/** A same-origin resource fetched with the token, as an object URL an <img> can show. */
export async function objectUrl(path) {
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) throw await errorOf(r);
  return URL.createObjectURL(await r.blob());
}

/**
 * Upload one file as multipart field `file` with XHR, so the browser reports progress.
 * Resolves to {status, body}; `onProgress(fraction)` is called as bytes leave.
 */
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    const t = token.get();
    if (t) xhr.setRequestHeader("Authorization", `Bearer ${t}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        /* not JSON */
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "the upload was interrupted"));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** Ids this browser remembers (playlists made or opened, exports requested): the API has no list of them. */
export function remembered(kind) {
  const key = `casebook.${kind}`;
  const read = () => {
    try {
      return JSON.parse(localStorage.getItem(key) || "[]");
    } catch (_) {
      return [];
    }
  };
  return {
    list: read,
    add(entry) {
      const rest = read().filter((e) => e.id !== entry.id);
      localStorage.setItem(key, JSON.stringify([entry, ...rest].slice(0, 100)));
    },
    remove(id) {
      localStorage.setItem(key, JSON.stringify(read().filter((e) => e.id !== id)));
    },
  };
}
