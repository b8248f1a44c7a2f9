// Parses each PowerShell script given on the command line with the tree-sitter-powershell grammar
// and fails (exit 1) on any syntax error, printing where it is.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Parser, Language } from "web-tree-sitter";

const require = createRequire(import.meta.url);
await Parser.init();
const language = await Language.load(require.resolve("tree-sitter-powershell/tree-sitter-powershell.wasm"));
const parser = new Parser();
parser.setLanguage(language);

let failed = 0;
for (const file of process.argv.slice(2)) {
  const tree = parser.parse(readFileSync(file, "utf8"));
  const problems = [];
  const walk = (node) => {
    if (node.isError || node.isMissing) {
      problems.push(`${file}:${node.startPosition.row + 1}:${node.startPosition.column + 1}: ` +
                    (node.isMissing ? `missing ${node.type}` : `syntax error near '${node.text.slice(0, 40)}'`));
    }
    if (node.hasError) for (const child of node.children) walk(child);
  };
  walk(tree.rootNode);
  if (problems.length) {
    failed++;
    for (const p of problems) console.error(p);
  } else {
    console.log(`${file}: ok (${tree.rootNode.descendantCount} nodes)`);
  }
}
process.exit(failed ? 1 : 0);
