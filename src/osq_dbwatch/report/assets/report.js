// osq-dbwatch report: draws the overview and the chain list from the JSON data block.
// Every value is attacker-shaped text: it only ever goes into textContent or
// setAttribute, never innerHTML (the page's CSP also requires Trusted Types).
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var S = D.S;
  // Chain arrays (html.py encode): the index of each field, by name.
  var CF = {};
  D.CF.forEach(function (name, i) { CF[name] = i; });
  var UID = CF.uid, HOST = CF.host, USER = CF.user, SEV = CF.sev, SCORE = CF.score, FIRST = CF.first,
      LAST = CF.last, TITLE = CF.title, MSG = CF.msg, STAGES = CF.stages, REASONS = CF.reasons,
      ATTACK = CF.attack, EVENTS = CF.events, VERSIONS = CF.versions;
  var SEVNAME = ["Unknown", "Informational", "Low", "Medium", "High", "Critical", "Fatal"];
  var PAGE = 100;
  var HOUR = 3600000, DAY = 86400000, MAX_DAYS = 92;
  var SVGNS = "http://www.w3.org/2000/svg";
  var chains = D.C;
  // Unpack once: times back to ms since the epoch, events to objects (absent fields left out),
  // reasons and techniques from their tables.
  var NUMBER = {pid: 1, ppid: 1, size: 1, port: 1};
  chains.forEach(function (c) {
    var first = c[FIRST];
    c[LAST] += first;
    c[EVENTS] = c[EVENTS].map(function (a) {
      var e = {s: a[0], lo: first + a[1]};
      if (a.length > 2 && a[2] !== null) e.hi = first + a[2];
      if (a[3]) e.own = 1;
      for (var i = 4; i < a.length; i++) {
        var name = D.EF[i];
        if (NUMBER[name] ? a[i] !== null : a[i]) e[name] = a[i];
      }
      return e;
    });
    c[REASONS] = c[REASONS].map(function (i) { return D.R[i]; });
    c[ATTACK] = c[ATTACK].map(function (i) { return D.T[i]; });
  });
  var hostSet = new Set(), userSet = new Set();
  chains.forEach(function (c) { hostSet.add(S[c[HOST]]); userSet.add(S[c[USER]]); });

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function iso(ms) {  // "2026-11-02 04:10:05" (UTC)
    var d = new Date(ms);
    if (isNaN(d.getTime())) return "?";
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }
  function day(ms) { return iso(ms).slice(0, 10); }
  function bytes(n) {
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0, v = n;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i ? v.toFixed(1) : v) + " " + units[i] + (i ? " (" + n.toLocaleString("en") + " bytes)" : "");
  }
  function str(i) { return i === undefined || i === null ? "" : S[i]; }

  // ---- filters ------------------------------------------------------------
  var F = {host: $("f-host"), user: $("f-user"), from: $("f-from"), to: $("f-to"), order: $("f-order")};
  function parseLocal(v) { return v ? Date.parse(v + (v.length === 16 ? ":00" : "") + "Z") : NaN; }
  function toLocal(ms) { return iso(ms).replace(" ", "T"); }
  function nameMatch(value, known, name) {
    if (!value) return true;
    if (known.has(value)) return name === value;  // a name from the list: that one only
    return name.toLowerCase().indexOf(value.toLowerCase()) >= 0;
  }
  function current() {
    var sev = {};
    for (var s = 0; s <= 6; s++) { var box = $("f-sev-" + s); sev[s] = box ? box.checked : true; }
    return {host: F.host.value.trim(), user: F.user.value.trim(), sev: sev,
            from: parseLocal(F.from.value), to: parseLocal(F.to.value)};
  }
  function matches(c, f) {
    if (!f.sev[c[SEV]]) return false;
    if (!isNaN(f.from) && c[LAST] < f.from) return false;
    if (!isNaN(f.to) && c[FIRST] > f.to) return false;
    return nameMatch(f.host, hostSet, S[c[HOST]]) && nameMatch(f.user, userSet, S[c[USER]]);
  }
  var ORDERS = {
    severity: function (a, b) { return b[SEV] - a[SEV] || b[LAST] - a[LAST]; },
    newest: function (a, b) { return b[LAST] - a[LAST] || b[SEV] - a[SEV]; },
    oldest: function (a, b) { return a[FIRST] - b[FIRST] || b[SEV] - a[SEV]; }
  };

  // ---- overview -------------------------------------------------------------
  function drawTimeline(list) {
    var box = $("timeline");
    box.textContent = "";
    if (!list.length) { box.appendChild(el("p", "empty", "No chain matches the filters.")); return; }
    var bins = new Map(), firstDay = Infinity, lastDay = -Infinity, max = 1;
    list.forEach(function (c) {
      var hour = Math.floor(c[FIRST] / HOUR), d = Math.floor(c[FIRST] / DAY);
      var b = bins.get(hour);
      if (!b) { b = [0, 0, 0, 0, 0, 0, 0]; bins.set(hour, b); }
      b[c[SEV]] = (b[c[SEV]] || 0) + 1;
      var total = b.reduce(function (x, y) { return x + y; }, 0);
      if (total > max) max = total;
      if (d < firstDay) firstDay = d;
      if (d > lastDay) lastDay = d;
    });
    var from = Math.max(firstDay, lastDay - MAX_DAYS + 1);
    // A few days get taller rows (the bars' detail), many days shorter ones (all of them in view).
    var rows = lastDay - from + 1, labelW = 88, colW = 28, rowH = Math.max(26, Math.min(90, Math.floor(180 / rows)));
    var top = 16, barH = rowH - 8;
    var width = labelW + 24 * colW + 22, height = top + rows * rowH + 4;
    var svg = sv("svg", {viewBox: "0 0 " + width + " " + height, role: "img",
                         "aria-label": "chains per hour of each day, stacked by severity"});
    for (var h = 0; h <= 24; h += 3) {
      svg.appendChild(sv("text", {x: labelW + h * colW, y: 11, "class": "axis", "text-anchor": "middle"}, pad(h) + ":00"));
    }
    for (var r = 0; r < rows; r++) {
      var dayNo = from + r, y0 = top + r * rowH, dayMs = dayNo * DAY;
      svg.appendChild(sv("line", {x1: labelW, x2: labelW + 24 * colW, y1: y0 + rowH - 4, y2: y0 + rowH - 4, "class": "grid"}));
      var label = sv("text", {x: 0, y: y0 + rowH - 10, "class": "day", "data-day": dayMs}, day(dayMs));
      label.appendChild(sv("title", {}, "show " + day(dayMs) + " only"));
      svg.appendChild(label);
      for (var hh = 0; hh < 24; hh++) {
        var b = bins.get(dayNo * 24 + hh), x = labelW + hh * colW + 3;
        if (!b) continue;
        var g = sv("g", {"class": "bar", "data-hour": (dayNo * 24 + hh) * HOUR});
        var y = y0 + rowH - 4, parts = [];
        for (var s = 6; s >= 0; s--) {
          if (!b[s]) continue;
          parts.push(b[s] + " " + SEVNAME[s].toLowerCase());
        }
        for (var s2 = 0; s2 <= 6; s2++) {
          if (!b[s2]) continue;
          var hgt = Math.max(1.5, barH * b[s2] / max);
          y -= hgt;
          g.appendChild(sv("rect", {x: x, y: y, width: colW - 6, height: hgt, "class": "b" + s2}));
        }
        var slot = sv("rect", {x: x - 3, y: y0, width: colW, height: rowH - 4, "class": "slot"});
        slot.appendChild(sv("title", {}, day(dayMs) + " " + pad(hh) + ":00-" + pad(hh + 1) + ":00 UTC: " + parts.join(", ")));
        g.appendChild(slot);
        svg.appendChild(g);
      }
    }
    box.appendChild(svg);
    if (lastDay - firstDay + 1 > rows) {
      box.appendChild(el("p", "hint", "Showing the last " + rows + " days; set From to see earlier ones."));
    }
  }
  function drawTop(id, list, field, input) {
    var counts = new Map();
    list.forEach(function (c) {
      var k = c[field], e = counts.get(k);
      if (!e) { e = [0, 0]; counts.set(k, e); }
      e[0]++;
      if (c[SEV] > e[1]) e[1] = c[SEV];
    });
    var top = Array.from(counts.entries()).sort(function (a, b) { return b[1][0] - a[1][0] || b[1][1] - a[1][1]; }).slice(0, 10);
    var ol = $(id);
    ol.textContent = "";
    top.forEach(function (kv) {
      var li = el("li", "sev-" + kv[1][1]), line = el("span");
      var b = el("button", "", S[kv[0]] || "(none)");
      b.type = "button";
      b.dataset.value = S[kv[0]];
      b.dataset.target = input;
      b.title = "show only " + (S[kv[0]] || "(none)");
      line.appendChild(b);
      var cnt = el("span", "cnt", kv[1][0]);
      cnt.title = kv[1][0] + (kv[1][0] === 1 ? " chain" : " chains") + ", the worst " + SEVNAME[kv[1][1]].toLowerCase();
      line.appendChild(cnt);
      li.appendChild(line);
      ol.appendChild(li);
    });
  }

  // ---- chains ---------------------------------------------------------------
  function kv(dl, key, value, code) {
    if (value === "" || value === undefined || value === null) return;
    dl.appendChild(el("dt", "", key));
    var dd = el("dd");
    if (code) dd.appendChild(el("code", code === true ? "" : code, value)); else dd.textContent = String(value);
    dl.appendChild(dd);
    return dd;
  }
  function proc(pid, exe, user, cwd) {
    return [pid !== undefined ? "pid " + pid : "", str(exe), user !== undefined ? "user " + str(user) : "",
            cwd !== undefined ? "cwd " + str(cwd) : ""].filter(Boolean).join(", ");
  }
  function eventItem(e) {
    var stage = str(e.s), li = el("li", "ev ev-" + stage.replace(/[^a-z_-]/gi, ""));
    li.dataset.stage = stage;
    li.dataset.lo = e.lo;
    li.dataset.hi = e.hi !== undefined ? e.hi : e.lo;
    var head = el("div", "ev-head");
    var t = el("time", e.hi === undefined ? "" : "approx",
               e.hi === undefined ? iso(e.lo) : "between " + iso(e.lo) + " and " + iso(e.hi));
    t.setAttribute("datetime", new Date(e.lo).toISOString());
    if (e.hi === undefined && !e.own) t.title = "the chain's first or last seen time";
    head.appendChild(t);
    head.appendChild(el("span", "ev-stage", stage));
    if (e.tool !== undefined) head.appendChild(el("span", "mono", str(e.tool)));
    li.appendChild(head);
    var dl = el("dl", "kv");
    kv(dl, "command line", str(e.cmd), "cmd");
    kv(dl, "history entry", str(e.sql), "cmd");
    kv(dl, "process", proc(e.pid, e.exe, e.user, e.cwd));
    if (e.pcmd !== undefined || e.pexe !== undefined || e.ppid !== undefined) {
      kv(dl, "parent", str(e.pcmd), "pcmd");
      kv(dl, e.pcmd !== undefined ? "" : "parent", proc(e.ppid, e.pexe));
    }
    kv(dl, "database", [e.db !== undefined ? str(e.db) : "", e.dbh !== undefined ? "on " + str(e.dbh) : "",
                        e.dbu !== undefined ? "as " + str(e.dbu) : ""].filter(Boolean).join(" "));
    kv(dl, "history file", str(e.hist), true);
    kv(dl, "file", str(e.path), "path");
    if (e.size !== undefined) kv(dl, "size", bytes(e.size));
    kv(dl, "owner", str(e.owner));
    kv(dl, "content", str(e.kind));
    kv(dl, "file event", str(e.act));
    if (e.addr !== undefined) {
      kv(dl, "destination", str(e.addr) + (e.port !== undefined ? " port " + e.port : ""), "dst");
      // osquery 5.x says in_progress for a non-blocking connect, succeeded when it completed; older agents neither.
      var st = str(e.status);
      if (st) kv(dl, "connection", st).className = "st-" + st.replace(/[^a-z_]/gi, "");
      else if (/db_egress$/.test(str(e.query))) kv(dl, "connection", "status not in the finding");
    }
    kv(dl, "query", str(e.query));
    li.appendChild(dl);
    return li;
  }
  function chainCard(c) {
    var sev = c[SEV], card = el("details", "chain sev-" + sev);
    card.dataset.uid = c[UID];
    card.dataset.sev = sev;
    card.dataset.host = S[c[HOST]];
    card.dataset.user = S[c[USER]];
    card.dataset.first = c[FIRST];
    var sum = el("summary");
    sum.appendChild(el("span", "badge", SEVNAME[sev] + (c[SCORE] !== null ? " " + c[SCORE] : "")));
    sum.appendChild(el("span", "when", iso(c[FIRST]) + (c[LAST] !== c[FIRST] ? " .. " + iso(c[LAST]).slice(day(c[FIRST]) === day(c[LAST]) ? 11 : 0) : "")));
    sum.appendChild(el("span", "who host", S[c[HOST]]));
    sum.appendChild(el("span", "who user", S[c[USER]]));
    sum.appendChild(el("span", "title", S[c[TITLE]] || S[c[MSG]]));
    var stages = el("span", "stages");
    c[STAGES].forEach(function (i) { stages.appendChild(el("span", "stage stage-" + S[i].replace(/[^a-z_-]/gi, ""), S[i])); });
    sum.appendChild(stages);
    card.appendChild(sum);
    var body = el("div", "body");
    if (S[c[MSG]]) body.appendChild(el("p", "msg", S[c[MSG]]));
    body.appendChild(el("p", "meta", "chain " + c[UID] + (c[VERSIONS] > 1 ? " · latest of " + c[VERSIONS] + " findings" : "")));
    var ol = el("ol", "timeline");
    c[EVENTS].forEach(function (e) { ol.appendChild(eventItem(e)); });
    body.appendChild(ol);
    if (c[REASONS].length) {
      var table = el("table", "reasons"), tr = el("tr");
      ["reason", "score", "why"].forEach(function (h) { tr.appendChild(el("th", "", h)); });
      table.appendChild(tr);
      c[REASONS].forEach(function (r) {
        var row = el("tr", "reason");
        row.appendChild(el("td", "mono code", S[r[0]]));
        var d = r[1];
        row.appendChild(el("td", "d " + (d > 0 ? "pos" : d < 0 ? "neg" : ""), d === null ? "" : (d > 0 ? "+" : d < 0 ? "\u2212" : "\u00b1") + Math.abs(d)));
        row.appendChild(el("td", "", S[r[2]]));
        table.appendChild(row);
      });
      body.appendChild(table);
    }
    if (c[ATTACK].length) {
      var ul = el("ul", "attack");
      c[ATTACK].forEach(function (a) {
        var li = el("li", "technique");
        li.appendChild(el("span", "mono", S[a[0]] + " "));
        li.appendChild(document.createTextNode(S[a[1]] + " "));
        if (S[a[2]]) li.appendChild(el("span", "tactic", "(" + S[a[2]] + ")"));
        ul.appendChild(li);
      });
      body.appendChild(el("h3", "", "ATT&CK techniques"));
      body.appendChild(ul);
    }
    card.appendChild(body);
    return card;
  }

  var matching = [], shown = 0;
  function showMore() {
    var box = $("chains"), frag = document.createDocumentFragment();
    var end = Math.min(matching.length, shown + PAGE);
    for (var i = shown; i < end; i++) frag.appendChild(chainCard(matching[i]));
    box.appendChild(frag);
    shown = end;
    var rest = matching.length - shown;
    $("more").hidden = rest <= 0;
    $("more").textContent = "Show " + Math.min(PAGE, rest) + " more (" + rest + " not shown)";
    $("count").textContent = (matching.length === chains.length ? "All " + chains.length + " chains" :
      matching.length + " of " + chains.length + " chains match") + (shown < matching.length ? ", first " + shown + " shown" : "");
  }
  function update() {
    var f = current();
    matching = chains.filter(function (c) { return matches(c, f); });
    matching.sort(ORDERS[F.order.value] || ORDERS.severity);
    drawTimeline(matching);
    drawTop("top-hosts", matching, HOST, "f-host");
    drawTop("top-users", matching, USER, "f-user");
    var counts = [0, 0, 0, 0, 0, 0, 0];
    matching.forEach(function (c) { counts[c[SEV]]++; });
    Array.prototype.forEach.call(document.querySelectorAll("#totals .n"), function (n) {
      n.textContent = counts[+n.dataset.sev] || 0;
    });
    $("chains").textContent = "";
    shown = 0;
    showMore();
    document.body.dataset.ready = "1";  // for tests and scripts: the list reflects the filters
  }

  var pending = 0;
  function soon() {  // typing redraws once it pauses; "ready" is off until the list catches up
    delete document.body.dataset.ready;
    clearTimeout(pending);
    pending = setTimeout(update, 120);
  }
  $("filters").addEventListener("input", soon);
  $("filters").addEventListener("change", soon);
  $("filters").addEventListener("submit", function (ev) { ev.preventDefault(); update(); });
  $("filters").addEventListener("reset", function () { delete document.body.dataset.ready; setTimeout(update, 0); });
  $("more").addEventListener("click", showMore);
  function setRange(from, to) {
    F.from.value = toLocal(from);
    F.to.value = toLocal(to - 1000);
    update();
  }
  $("timeline").addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest("[data-hour],[data-day]") : null;
    if (!t) return;
    if (t.dataset.hour !== undefined) setRange(+t.dataset.hour, +t.dataset.hour + HOUR);
    else setRange(+t.dataset.day, +t.dataset.day + DAY);
  });
  document.querySelector(".overview").addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-target]") : null;
    if (!b) return;
    $(b.dataset.target).value = b.dataset.value;
    update();
  });
  update();
})();
