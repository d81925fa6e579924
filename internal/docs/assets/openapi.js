// Renders /openapi.yaml with Redoc below the fixed bar (docs.css); body[data-ready] marks the end.
Redoc.init("/openapi.yaml", {
  scrollYOffset: ".docs-nav",
  expandResponses: "200,201",
  jsonSampleExpandLevel: 4,
  pathInMiddlePanel: true,
  requiredPropsFirst: true,
  hideLoading: true,
  theme: {
    sidebar: { width: "280px" },
    typography: { fontFamily: "system-ui, sans-serif", headings: { fontFamily: "system-ui, sans-serif" }, code: { fontFamily: "ui-monospace, monospace" } },
  },
}, document.getElementById("reference"), (err) => {
  document.body.dataset.ready = err ? "error" : "true";
});
