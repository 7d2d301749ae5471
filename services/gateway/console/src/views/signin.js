// Sign in: paste a bearer token, or (embedded mode only) mint one for a named local user.
import { useState } from "preact/hooks";
import { get, post } from "../api.js";
import { ErrorBox, html, navigate, useLoad } from "../ui.js";

const ROLES = ["contributor", "editor", "supporter"];
// As the route checks it; the hyphen escaped for the `v`-mode regular expressions of the pattern attribute.
const USER_PATTERN = "[A-Za-z0-9_.\\-]+";

export function SignIn({ session }) {
  const [pasted, setPasted] = useState("");
  const [error, setError] = useState(null);
  // The minting route exists only when the gateway runs embedded; its OpenAPI says so.
  const [doc] = useLoad(() => get("/openapi.json").catch(() => null), []);
  const canMint = !!(doc && doc.paths && doc.paths["/v1/dev/tokens"]);

  const use = async (t) => {
    setError(null);
    try {
      await session.signIn(t.trim());
      navigate("/");
    } catch (e) {
      setError(e);
    }
  };
  const submitPaste = (e) => {
    e.preventDefault();
    use(pasted);
  };
  return html`<section class="narrow">
    <h1>Sign in</h1>
    <form onSubmit=${submitPaste} class="card">
      <h2>With a token</h2>
      <label for="token">Bearer token</label>
      <textarea id="token" rows="4" required value=${pasted} onInput=${(e) => setPasted(e.target.value)}
        placeholder="eyJ…" spellcheck="false" autocomplete="off"></textarea>
      <p class="hint">Your identity provider issues it; on a local platform <code>make token USER=alice ROLES=contributor</code> prints one.</p>
      <button type="submit">Sign in</button>
    </form>
    ${canMint && html`<${Mint} onToken=${use} />`}
    <${ErrorBox} error=${error} />
  </section>`;
}

function Mint({ onToken }) {
  const [user, setUser] = useState("");
  const [name, setName] = useState("");
  const [roles, setRoles] = useState(["contributor"]);
  const [error, setError] = useState(null);
  const toggle = (r) => setRoles(roles.includes(r) ? roles.filter((x) => x !== r) : [...roles, r]);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { user: user.trim(), roles };
      if (name.trim()) body.name = name.trim();
      const out = await post("/v1/dev/tokens", body);
      await onToken(out.token);
    } catch (err) {
      setError(err);
    }
  };
  return html`<form onSubmit=${submit} class="card" aria-labelledby="mint-title">
    <h2 id="mint-title">As a local user <span class="badge">embedded mode</span></h2>
    <label for="mint-user">User id</label>
    <input id="mint-user" required pattern=${USER_PATTERN} maxlength="64" value=${user}
      onInput=${(e) => setUser(e.target.value)} autocomplete="username" />
    <label for="mint-name">Display name</label>
    <input id="mint-name" maxlength="200" value=${name} onInput=${(e) => setName(e.target.value)} placeholder="Dr Alice Moreau" />
    <fieldset>
      <legend>Roles</legend>
      ${ROLES.map((r) => html`<label class="inline"><input type="checkbox" name="roles" value=${r}
        checked=${roles.includes(r)} onChange=${() => toggle(r)} /> ${r}</label>`)}
    </fieldset>
    <button type="submit">Mint a token and sign in</button>
    <${ErrorBox} error=${error} />
  </form>`;
}
