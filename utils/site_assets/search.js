// Search over window.BML_SEARCH (written by utils/site.py): every word of the query must occur in an entry's
// title, page or text. Plain substring matching, so Chinese needs no word segmentation. Works from file://.
(function () {
  var box = document.getElementById("bml-query"), list = document.getElementById("bml-results"),
      count = document.getElementById("bml-count"), entries = window.BML_SEARCH || [];
  function escape(text) {
    return text.replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; });
  }
  function run() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean), hits = [];
    if (words.length) {
      entries.forEach(function (e) {
        var title = e.t.toLowerCase(), all = title + " " + e.p.toLowerCase() + " " + e.x.toLowerCase();
        if (words.every(function (w) { return all.indexOf(w) >= 0; })) {
          hits.push([words.filter(function (w) { return title.indexOf(w) >= 0; }).length, e]);
        }
      });
      hits.sort(function (a, b) { return b[0] - a[0]; });
    }
    count.textContent = words.length ? hits.length + " results" : entries.length + " headings and questions indexed";
    list.innerHTML = hits.slice(0, 100).map(function (h) {
      var e = h[1];
      return '<li><a href="' + escape(e.u) + '">' + escape(e.t) + '</a> <span class="where">' + escape(e.p) +
             '</span><div class="text">' + escape(e.x.slice(0, 200)) + '</div></li>';
    }).join("");
  }
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) { box.value = query; }
  box.addEventListener("input", run);
  run();
})();
