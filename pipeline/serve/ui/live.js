// Live updates: every 2 s the page's own address is fetched again and its
// <main> swapped in, while the tab is visible. Without JavaScript the page
// is the same, only not live.
(function () {
  var main = document.querySelector("main[data-live]");
  if (!main || !window.fetch) return;
  var every = 2000;
  function tick() {
    if (document.hidden || main.contains(document.activeElement) && document.activeElement.tagName === "INPUT") {
      return setTimeout(tick, every);
    }
    fetch(location.href, { headers: { "X-Tsys-Partial": "main" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null && html !== main.innerHTML) main.innerHTML = html; })
      .catch(function () {})
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
