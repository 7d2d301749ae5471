// Playlists: ordered lists of public cases. The API lists no one's playlists, so this browser remembers those it saw.
import { useState } from "preact/hooks";
import { api, get, post, remembered } from "../api.js";
import { ErrorBox, html, Link, Loading, navigate, useLoad } from "../ui.js";
import { ExportStatus, startExport } from "./exports.js";

export const playlistsSeen = remembered("playlists");

export function Playlists({ me }) {
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [visibility, setVisibility] = useState("public");
  const [openId, setOpenId] = useState("");
  const [error, setError] = useState(null);
  const [known] = useLoad(() => Promise.all(playlistsSeen.list().map((p) =>
    get(`/v1/playlists/${p.id}`).catch(() => ({ ...p, gone: true })))), []);
  if (!me) return html`<p>Please <${Link} href="/signin">sign in</${Link}>.</p>`;
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const pl = await post("/v1/playlists", { title: title.trim(), description, visibility });
      playlistsSeen.add({ id: pl.id, title: pl.title, owner: pl.owner });
      navigate(`/playlists/${pl.id}`);
    } catch (err) {
      setError(err);
    }
  };
  return html`<section>
    <h1>Playlists</h1>
    <div class="columns">
      <form class="card" onSubmit=${create} aria-labelledby="pl-new">
        <h2 id="pl-new">New playlist</h2>
        <label for="pl-title">Title</label>
        <input id="pl-title" required maxlength="300" value=${title} onInput=${(e) => setTitle(e.target.value)} />
        <label for="pl-description">Description</label>
        <textarea id="pl-description" rows="2" value=${description} onInput=${(e) => setDescription(e.target.value)}></textarea>
        <fieldset><legend>Visibility</legend>
          ${["public", "private"].map((v) => html`<label class="inline"><input type="radio" name="pl-vis" value=${v}
            checked=${visibility === v} onChange=${() => setVisibility(v)} /> ${v}</label>`)}
        </fieldset>
        <button type="submit">Create playlist</button>
        <${ErrorBox} error=${error} />
      </form>
      <div>
        <h2>Yours and opened here</h2>
        ${!known && html`<${Loading} />`}
        ${known && known.length === 0 && html`<p>None yet.</p>`}
        ${known && html`<ul class="cases">${known.map((p) => html`<li class="case-row">
          ${p.gone ? html`<span>${p.title} <span class="muted">(no longer available)</span></span>`
            : html`<${Link} href=${`/playlists/${p.id}`}>${p.title}</${Link}>
              <span class="muted">${p.cases.length} cases · ${p.visibility}</span>`}</li>`)}</ul>`}
        <form class="inline-form" onSubmit=${(e) => { e.preventDefault(); openId.trim() && navigate(`/playlists/${openId.trim()}`); }}>
          <label for="pl-open">Open a playlist by id</label>
          <input id="pl-open" value=${openId} onInput=${(e) => setOpenId(e.target.value)} />
          <button type="submit">Open</button>
        </form>
      </div>
    </div>
  </section>`;
}

export function PlaylistPage({ me, playlistId, supporter }) {
  const [pl, error] = useLoad(async () => {
    const p = await get(`/v1/playlists/${playlistId}`);
    playlistsSeen.add({ id: p.id, title: p.title, owner: p.owner });
    return p;
  }, [playlistId]);
  const [exp, setExp] = useState(null);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!pl) return html`<${Loading} />`;
  const requestDeck = async () => {
    setExp(await startExport(`/v1/playlists/${pl.id}/exports`, { kind: "presentation" }, `Presentation of playlist “${pl.title}”`));
  };
  return html`<section>
    <h1>${pl.title} <span class="badge">${pl.visibility}</span></h1>
    ${pl.description && html`<p>${pl.description}</p>`}
    <p class="muted">Playlist id <code>${pl.id}</code> · by ${pl.owner}</p>
    ${pl.cases.length === 0 && html`<p>No cases yet: add approved public cases from their page.</p>`}
    <ol class="cases">${pl.cases.map((c) => html`<li class="case-row"><${Link} href=${`/cases/${c.id}`}>${c.title}</${Link}>
      <span class="muted">${c.attribution}</span></li>`)}</ol>
    ${me && supporter && pl.cases.length > 0 && !exp && html`<button type="button" onClick=${requestDeck}>Download as an offline presentation</button>`}
    ${exp && html`<${ExportStatus} id=${exp.id} what="Playlist presentation" />`}
  </section>`;
}

/** On a case page: add the case to one of my remembered playlists. */
export function AddToPlaylist({ me, caseId }) {
  const mine = playlistsSeen.list().filter((p) => p.owner === me.id);
  const [choice, setChoice] = useState(mine[0] ? mine[0].id : "");
  const [done, setDone] = useState("");
  const [error, setError] = useState(null);
  if (mine.length === 0) return html`<p class="hint">Create a <${Link} href="/playlists">playlist</${Link}> to collect cases.</p>`;
  const add = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const pl = await api("POST", `/v1/playlists/${choice}/items`, { case_id: caseId });
      setDone(`Added to “${pl.title}” (${pl.cases.length} cases).`);
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="inline-form" onSubmit=${add}>
    <label for="add-pl">Add to playlist</label>
    <select id="add-pl" value=${choice} onChange=${(e) => setChoice(e.target.value)}>
      ${mine.map((p) => html`<option value=${p.id}>${p.title}</option>`)}</select>
    <button type="submit">Add</button>
    ${done && html`<span role="status">${done}</span>`}
    <${ErrorBox} error=${error} />
  </form>`;
}
