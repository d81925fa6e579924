// Validates asyncapi/asyncapi.yaml with the AsyncAPI parser (the library behind
// `asyncapi validate`): the document must parse, match the AsyncAPI 3.0 schema and pass the
// parser's built-in ruleset with no errors. Warnings are printed; errors fail (exit 1).
// usage: node scripts/node/asyncapi-validate.mjs [file]
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const file = process.argv[2] ?? "asyncapi/asyncapi.yaml";
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, "utf8"), { source: file });
const names = { [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning", [DiagnosticSeverity.Information]: "info", [DiagnosticSeverity.Hint]: "hint" };
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === DiagnosticSeverity.Error) errors++;
  const where = d.path?.length ? ` at ${d.path.join(".")}` : "";
  console.log(`${file}:${(d.range?.start?.line ?? 0) + 1}: ${names[d.severity] ?? d.severity} ${d.code}${where}: ${d.message}`);
}
if (!document || errors > 0) {
  console.error(`${file}: ${errors} error(s): not a valid AsyncAPI document`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()} document (${diagnostics.length} diagnostics, 0 errors)`);
