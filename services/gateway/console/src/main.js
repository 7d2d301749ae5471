// The Casebook console: one page app on the public v1 API, routed by path.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { get, token } from "./api.js";
import { html, Link, navigate, useLocation } from "./ui.js";
import { SignIn } from "./views/signin.js";
import { MyCases } from "./views/mycases.js";
import { Library } from "./views/library.js";
import { CasePage } from "./views/casepage.js";
import { CaseForm } from "./views/caseform.js";
import { Queue } from "./views/queue.js";
import { Featured } from "./views/featured.js";
import { Playlists, PlaylistPage } from "./views/playlists.js";
import { Exports } from "./views/exports.js";

function useSession() {
  const [me, setMe] = useState(undefined); // undefined: checking; null: signed out
  const refresh = async () => {
    if (!token.get()) return setMe(null);
    try {
      setMe(await get("/v1/me"));
    } catch (e) {
      if (e.status === 401) token.set("");
      setMe(null);
    }
  };
  useEffect(() => {
    refresh();
  }, []);
  return {
    me,
    signIn: async (t) => {
      token.set(t);
      const who = await get("/v1/me").catch((e) => {
        token.set("");
        throw e;
      });
      setMe(who);
      return who;
    },
    signOut: () => {
      token.set("");
      setMe(null);
      navigate("/");
    },
  };
}

const has = (me, role) => !!me && (me.roles.includes(role) || me.roles.includes("admin"));

function route(path, session) {
  const me = session.me;
  let m;
  if (path === "/" || path === "") return me ? html`<${MyCases} me=${me} />` : html`<${Library} me=${me} />`;
  if (path === "/signin") return html`<${SignIn} session=${session} />`;
  if (path === "/library") return html`<${Library} me=${me} />`;
  if (path === "/featured") return html`<${Featured} me=${me} editor=${has(me, "editor")} />`;
  if (path === "/cases/new") return html`<${CaseForm} me=${me} />`;
  if ((m = path.match(/^\/cases\/([^/]+)\/edit$/))) return html`<${CaseForm} me=${me} caseId=${m[1]} />`;
  if ((m = path.match(/^\/cases\/([^/]+)$/))) return html`<${CasePage} me=${me} caseId=${m[1]} has=${(r) => has(me, r)} />`;
  if (path === "/moderation") return html`<${Queue} me=${me} />`;
  if (path === "/playlists") return html`<${Playlists} me=${me} />`;
  if ((m = path.match(/^\/playlists\/([^/]+)$/)))
    return html`<${PlaylistPage} me=${me} playlistId=${m[1]} supporter=${has(me, "supporter")} />`;
  if (path === "/exports") return html`<${Exports} me=${me} />`;
  return html`<section><h1>Not found</h1><p>No console page at <code>${path}</code>.</p>
    <p><${Link} href="/">Back to the start</${Link}></p></section>`;
}

function Nav({ session, path }) {
  const me = session.me;
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  const item = (href, label) =>
    html`<li><${Link} href=${href} aria-current=${path === href ? "page" : undefined}
      onClick=${() => setOpen(false)}>${label}</${Link}></li>`;
  return html`<header class="top">
    <${Link} class="brand" href="/">Casebook</${Link}>
    <button type="button" class="menu-toggle" aria-expanded=${open ? "true" : "false"} aria-controls="nav"
      onClick=${() => setOpen(!open)}>Menu</button>
    <nav id="nav" aria-label="Main" class=${open ? "open" : ""}>
      <ul>
        ${me && item("/", "My cases")}
        ${item("/library", "Library")}
        ${item("/featured", "Featured")}
        ${has(me, "contributor") && item("/cases/new", "New case")}
        ${has(me, "editor") && item("/moderation", "Moderation")}
        ${me && item("/playlists", "Playlists")}
        ${me && item("/exports", "Exports")}
      </ul>
      <div class="who">
        ${me === undefined
          ? ""
          : me
            ? html`<span>Signed in as <strong>${me.name}</strong> <span class="muted">(${me.roles.join(", ") || "reader"})</span></span>
                <button type="button" class="link" onClick=${session.signOut}>Sign out</button>`
            : html`<${Link} class="button" href="/signin">Sign in</${Link}>`}
      </div>
    </nav>
  </header>`;
}

function App() {
  const session = useSession();
  const path = useLocation();
  // After a navigation, keyboard and screen-reader users start at the new page's content.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const main = document.getElementById("main");
    if (main) main.focus({ preventScroll: true });
  }, [path]);
  return html`<a class="skip" href="#main">Skip to content</a>
    <${Nav} session=${session} path=${path} />
    <main id="main" tabindex="-1">${session.me === undefined ? html`<p class="muted" role="status">Loading…</p>` : route(path, session)}</main>
    <footer class="muted">Casebook · cases under CC BY-NC-SA 4.0 · <a href="/docs">API</a></footer>`;
}

render(html`<${App} />`, document.getElementById("app"));
