// /docs: start Swagger UI (vendored) on the app's OpenAPI schema; "Try it out" requests carry
// the session's CSRF token, like the app's own forms.
"use strict";
(function () {
  const el = document.getElementById("swagger-ui");
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  window.ui = SwaggerUIBundle({
    url: el.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: (req) => { req.headers["X-CSRF-Token"] = csrf; return req; },
  });
})();
