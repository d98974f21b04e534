// Renders every formula of a build in one Node process (starting Node per formula would cost
// far more than KaTeX itself). Reads [[tex, display], ...] as JSON on stdin and writes
// [{html} | {error}, ...] as JSON on stdout, in the same order.
const katex = require("katex");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const results = JSON.parse(input).map(([tex, display]) => {
    try {
      return { html: katex.renderToString(tex, {
        displayMode: display, output: "htmlAndMathml", throwOnError: true, strict: "ignore",
      }) };
    } catch (error) {
      return { error: String(error.message || error) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
