// Builds the console into ../casebook_gateway/console_dist: index.html plus hashed assets, no network at run time.
import { build } from "esbuild";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, "../casebook_gateway/console_dist");
// The series viewer shared with the offline presentation: libs/casebook-web's framework-free module and its styles.
const viewer = resolve(here, "../../../libs/casebook-web/casebook_web/static/viewer.js");
const viewerCss = viewer.replace(/\.js$/, ".css");
if (!existsSync(viewer) || !existsSync(viewerCss)) {
  console.error(`the shared series viewer is missing: ${viewer}`);
  process.exit(1);
}

const viewerAlias = {
  name: "casebook-viewer",
  setup(b) {
    b.onResolve({ filter: /^casebook-viewer$/ }, () => ({ path: viewer }));
    b.onResolve({ filter: /^casebook-viewer\.css$/ }, () => ({ path: viewerCss }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
const result = await build({
  entryPoints: [join(here, "src/main.js"), join(here, "src/console.css")],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2020"],
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  metafile: true,
  plugins: [viewerAlias],
  logLevel: "warning",
});
const names = Object.keys(result.metafile.outputs).map((p) => relative(join(out, "assets"), resolve(p)));
const js = names.find((n) => n.startsWith("main-") && n.endsWith(".js"));
const css = names.find((n) => n.startsWith("console-") && n.endsWith(".css"));
writeFileSync(join(out, "index.html"), `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Casebook</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console-assets/${css}">
<script type="module" src="/console-assets/${js}"></script>
</head>
<body>
<div id="app"><noscript>The Casebook console needs JavaScript; the API is described at <a href="/docs">/docs</a>.</noscript></div>
</body>
</html>
`);
console.log(`console built into ${relative(process.cwd(), out)} (viewer: ${relative(here, viewer)})`);
