// docs-init.js: starts Swagger UI (swagger-ui-dist, embedded in the binary) on /openapi.json.
// A separate file, not an inline script: the page's Content-Security-Policy allows only this
// server's own scripts. "Try it out" sends requests to this server; with a token configured,
// "Authorize" takes it (the bearer scheme).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
