/* kernelnotes: on the search page opened from disk (file://), answer the search's requests
   for result pages from _static/search_pages.js (written by book/_ext/search_from_disk.py),
   since the browser lets a file:// page fetch nothing. Served over HTTP, nothing changes. */
(function () {
  "use strict";
  if (window.location.protocol !== "file:" || !window.kernelnotesSearchPages) { return; }
  var fetchFromNetwork = window.fetch.bind(window);
  window.fetch = function (resource, options) {
    var root = new URL(document.documentElement.dataset.content_root || "./",
                       window.location.href).href;
    var url = new URL(String(resource), window.location.href).href;
    var name = url.indexOf(root) === 0 ? url.slice(root.length).replace(/\.html$/, "") : null;
    if (name !== null && Object.prototype.hasOwnProperty.call(window.kernelnotesSearchPages, name)) {
      return Promise.resolve(new Response(window.kernelnotesSearchPages[name],
                                          {headers: {"Content-Type": "text/html"}}));
    }
    return fetchFromNetwork(resource, options);
  };
})();
