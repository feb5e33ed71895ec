// Search over window.BML_SEARCH (written by utils/site.py), from file:// too. Every term of the query must match
// an entry's title, page or text:
// - Latin text matches whole words ("RAG" does not match "averaging"); a term of four letters or more also
//   matches the start of a longer word ("checkpoint" finds "checkpoints"). A term with inner punctuation
//   ("gpt-2", "int8/fp16") is a phrase: its words must follow each other.
// - British and American spellings are folded on both sides (quantisation = quantization, analyse = analyze,
//   behaviour = behavior, modelling = modeling, centre = center, catalogue = catalog, and a few words).
// - Chinese, Japanese and Korean text is matched as substrings (no word segmentation), each run of such
//   characters separately: "KV 缓存" and "KV缓存" both need "KV" as a word and "缓存" somewhere in the entry.
// Under node, `require("./search.js")` returns the matching functions (tests/test_site.py runs them).
(function (root) {
  "use strict";
  var LATIN = /[a-z0-9\u00df-\u024f]+/g;
  var CJK = /[\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+/g;
  // Whole words whose spellings differ otherwise (British -> American).
  var WORDS = {artefact: "artifact", artefacts: "artifacts", programme: "program", programmes: "programs",
               judgement: "judgment", judgements: "judgments", grey: "gray", ageing: "aging", licence: "license",
               licences: "licenses", defence: "defense", offence: "offense", aluminium: "aluminum",
               cheque: "check", tonne: "ton", tonnes: "tons"};
  // Endings, applied in order to each word (British -> American); the stem before the ending must be long
  // enough that short words keep their meaning (hour, four, your; rise, wise; yelled, spelled).
  var ENDINGS = [
    [/^([a-z]{2,})is(e|es|ed|ing|er|ers|ation|ations|able)$/, "$1iz$2"],   // quantisation, normalise, optimiser
    [/^([a-z]{2,})ys(e|es|ed|ing|er|ers)$/, "$1yz$2"],                      // analyse, paralysed
    [/^([a-z]{3,})our(s|ed|ing|ite|ites|able|ful)?$/, "$1or$2"],            // behaviour, colour, favourite
    [/^([a-z]{3,})ell(ed|ing|er|ers)$/, "$1el$2"],                          // modelling, labelled, cancelled
    [/^([a-z]{2,})tre(s|d)?$/, "$1ter$2"],                                  // centre, metres
    [/^([a-z]{3,})ogue(s)?$/, "$1og$2"]                                     // catalogue, dialogue, analogue
  ];

  function fold(word) {
    if (Object.prototype.hasOwnProperty.call(WORDS, word)) { return WORDS[word]; }
    for (var i = 0; i < ENDINGS.length; i++) {
      if (ENDINGS[i][0].test(word)) { return word.replace(ENDINGS[i][0], ENDINGS[i][1]); }
    }
    return word;
  }

  function normal(text) {
    return String(text || "").normalize("NFKC").toLowerCase();
  }

  function words(text) {
    return (normal(text).match(LATIN) || []).map(fold);
  }

  // A query as the list of what must match: {phrase: [folded words]} for Latin, {cjk: "substring"} otherwise.
  function parse(query) {
    var needs = [];
    normal(query).split(/\s+/).filter(Boolean).forEach(function (piece) {
      (piece.match(CJK) || []).forEach(function (run) { needs.push({cjk: run}); });
      piece.split(CJK).forEach(function (rest) {
        var phrase = (rest.match(LATIN) || []).map(fold);
        if (phrase.length) { needs.push({phrase: phrase}); }
      });
    });
    return needs;
  }

  function wordMatches(want, have, last) {
    return have === want || (last && want.length >= 4 && have.lastIndexOf(want, 0) === 0);
  }

  function phraseIn(phrase, have) {
    for (var i = 0; i + phrase.length <= have.length; i++) {
      var j = 0;
      while (j < phrase.length && wordMatches(phrase[j], have[i + j], j === phrase.length - 1)) { j++; }
      if (j === phrase.length) { return true; }
    }
    return false;
  }

  function prepared(text) {
    return {text: normal(text), words: words(text)};
  }

  function matches(need, doc) {
    return need.cjk !== undefined ? doc.text.indexOf(need.cjk) >= 0 : phraseIn(need.phrase, doc.words);
  }

  // The entries every need matches, those matching more needs in their title first (stable otherwise).
  function search(query, entries) {
    var needs = parse(query), hits = [];
    if (!needs.length) { return hits; }
    entries.forEach(function (e, order) {
      if (!e._bml) { e._bml = {title: prepared(e.t), all: prepared(e.t + " \n " + e.p + " \n " + e.x)}; }
      if (needs.every(function (n) { return matches(n, e._bml.all); })) {
        var score = needs.filter(function (n) { return matches(n, e._bml.title); }).length;
        hits.push({score: score, order: order, entry: e});
      }
    });
    hits.sort(function (a, b) { return b.score - a.score || a.order - b.order; });
    return hits.map(function (h) { return h.entry; });
  }

  var api = {fold: fold, words: words, parse: parse, search: search};
  if (typeof module !== "undefined" && module.exports) { module.exports = api; }
  if (typeof document === "undefined") { return; }

  var box = document.getElementById("bml-query"), list = document.getElementById("bml-results"),
      count = document.getElementById("bml-count"), entries = root.BML_SEARCH || [];
  function escape(text) {
    return text.replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; });
  }
  function run() {
    var asked = parse(box.value).length, hits = search(box.value, entries);
    count.textContent = asked ? hits.length + " results" : entries.length + " headings and questions indexed";
    list.innerHTML = hits.slice(0, 100).map(function (e) {
      return '<li><a href="' + escape(e.u) + '">' + escape(e.t) + '</a> <span class="where">' + escape(e.p) +
             '</span><div class="text">' + escape(e.x.slice(0, 200)) + '</div></li>';
    }).join("");
  }
  var query = new URLSearchParams(root.location.search).get("q");
  if (query) { box.value = query; }
  box.addEventListener("input", run);
  run();
})(typeof window !== "undefined" ? window : this);
