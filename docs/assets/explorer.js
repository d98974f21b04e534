// The weights explorer: what each position of a passage weighs, in AFT-local and in softmax
// attention (data from aft/explore.py, put into the page by literate/explorer.py).
//
// Contract (the browser tests read it): the root carries data-aft-explorer; each character
// carries data-pos; while a character is selected, it and every character before it carry
// data-weight, the weight shown (one row's weights sum to 1).
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var counter = 0;

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (match, name) {
      return name in values ? values[name] : match;
    });
  }

  function percent(x) {
    return (100 * x).toFixed(1);
  }

  // One layer's weights: one byte per weight on a log scale (see aft/explore.py), rows
  // t = 0, 1, ... of t + 1 weights each; decoded lazily, each row divided by its sum.
  function Layer(encoded, data) {
    var bytes = atob(encoded);
    var rows = [];
    this.row = function (t) {
      if (!rows[t]) {
        var start = (t * (t + 1)) / 2;
        var row = new Float64Array(t + 1);
        var total = 0;
        for (var i = 0; i <= t; i++) {
          var code = bytes.charCodeAt(start + i);
          row[i] = code === 0 ? 0 : Math.pow(data.floor, (data.codes - code) / (data.codes - 1));
          total += row[i];
        }
        for (i = 0; i <= t; i++) row[i] /= total;
        rows[t] = row;
      }
      return rows[t];
    };
  }

  function Explorer(root) {
    var words = JSON.parse(root.querySelector(".aft-x-words").textContent);
    var data = JSON.parse(root.querySelector(".aft-x-data").textContent);
    var id = "aft-x-" + ++counter;
    var s = data.window;
    var models = Object.keys(data.models);
    var layers = {};
    models.forEach(function (name) {
      layers[name] = data.models[name].mean.map(function (encoded) {
        return new Layer(encoded, data);
      });
    });
    var state = { model: models[0], layer: 0, pos: -1 };

    root.querySelector(".aft-x-noscript").hidden = true;

    // ## The switches: a radio group each
    var controls = element("div", { class: "aft-x-controls" });
    function radios(legend, name, options, checked, onChange) {
      var set = element("fieldset", { class: "aft-x-switch" });
      set.appendChild(element("legend", {}, legend));
      options.forEach(function (option) {
        var label = element("label");
        var input = element("input", { type: "radio", name: id + "-" + name,
                                       value: String(option.value) });
        input.checked = option.value === checked;
        input.addEventListener("change", function () {
          if (input.checked) onChange(option.value);
        });
        label.appendChild(input);
        label.appendChild(document.createTextNode(" " + option.label));
        set.appendChild(label);
      });
      controls.appendChild(set);
    }
    radios(words.model, "model", models.map(function (name) {
      return { value: name, label: words[name] || name };
    }), state.model, function (value) { state.model = value; show(); });
    radios(words.layer, "layer", data.models[models[0]].mean.map(function (_, index) {
      return { value: index, label: String(index + 1) };
    }), 0, function (value) { state.layer = value; show(); });
    root.appendChild(controls);

    var help = element("p", { class: "aft-x-help", id: id + "-help" },
                       fill(words.help, { s: s }));
    root.appendChild(help);

    // ## The text: one listbox, one option per character
    var text = element("div", { class: "aft-x-text", role: "listbox", tabindex: "0",
                                "aria-label": words.text, "aria-describedby": id + "-help" });
    var chars = Array.prototype.map.call(data.text, function (character, pos) {
      var shown = character === "\n" ? "\u21b5" : character;
      var name = character === "\n" ? words.newline : character === " " ? words.space
                                                                          : character;
      var span = element("span", { class: "aft-x-char", role: "option", id: id + "-" + pos,
                                   "data-pos": String(pos), "aria-selected": "false",
                                   "aria-label": pos + ": " + name }, shown);
      if (character === "\n") span.classList.add("aft-x-newline");
      if (character === " ") span.classList.add("aft-x-space");
      text.appendChild(span);
      return span;
    });
    root.appendChild(text);

    // ## The chart: weight by distance, window and far keys in two colours
    var figure = element("figure", { class: "aft-x-chart" });
    var svg = document.createElementNS(SVG, "svg");
    var T = data.text.length, H = 60;
    svg.setAttribute("viewBox", "0 0 " + T + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", words.chart);
    var windowBars = document.createElementNS(SVG, "path");
    windowBars.setAttribute("class", "aft-x-bars-window");
    var farBars = document.createElementNS(SVG, "path");
    farBars.setAttribute("class", "aft-x-bars-far");
    var edge = document.createElementNS(SVG, "line");
    edge.setAttribute("class", "aft-x-edge");
    edge.setAttribute("x1", s); edge.setAttribute("x2", s);
    edge.setAttribute("y1", 0); edge.setAttribute("y2", H);
    svg.appendChild(windowBars); svg.appendChild(farBars); svg.appendChild(edge);
    figure.appendChild(svg);
    var caption = element("figcaption");
    var axis = element("span", { class: "aft-x-axis" }, words.distance + ": 0 \u2192");
    var shares = element("span", { class: "aft-x-shares" });
    var windowShare = element("b", { class: "aft-x-share-window" });
    var farShare = element("b", { class: "aft-x-share-far" });
    shares.appendChild(element("span", { class: "aft-x-key-window" }, words.window + " "));
    shares.appendChild(windowShare);
    shares.appendChild(document.createTextNode(" \u00b7 "));
    shares.appendChild(element("span", { class: "aft-x-key-far" }, words.far + " "));
    shares.appendChild(farShare);
    caption.appendChild(element("span", { class: "aft-x-chart-title" }, words.chart));
    caption.appendChild(shares);
    caption.appendChild(axis);
    figure.appendChild(caption);
    root.appendChild(figure);

    var readout = element("p", { class: "aft-x-readout", "aria-live": "polite" });
    root.appendChild(readout);

    // ## Showing one row
    function show() {
      var t = state.pos;
      if (t < 0) return;
      var row = layers[state.model][state.layer].row(t);
      var largest = 0;
      for (var i = 0; i <= t; i++) largest = Math.max(largest, row[i]);
      var windowTotal = 0, farTotal = 0, windowPath = "", farPath = "";
      chars.forEach(function (span, pos) {
        span.classList.remove("aft-x-in-window", "aft-x-window-start", "aft-x-selected");
        span.setAttribute("aria-selected", pos === t ? "true" : "false");
        if (pos > t) {
          span.removeAttribute("data-weight");
          span.style.removeProperty("--aft-x-w");
          return;
        }
        var weight = row[pos], distance = t - pos;
        span.setAttribute("data-weight", weight.toFixed(6));
        // a square-root scale, so that the many small weights stay visible
        span.style.setProperty("--aft-x-w", Math.sqrt(weight / largest).toFixed(3));
        // the same square-root scale for the bars
        var bar = "M" + distance + "," + H + "v" + (-H * Math.sqrt(weight / largest)).toFixed(2) +
                  "h1V" + H + "z";
        if (distance < s) {
          windowTotal += weight;
          windowPath += bar;
          span.classList.add("aft-x-in-window");
          if (distance === s - 1 || pos === 0) span.classList.add("aft-x-window-start");
        } else {
          farTotal += weight;
          farPath += bar;
        }
      });
      chars[t].classList.add("aft-x-selected");
      text.setAttribute("aria-activedescendant", chars[t].id);
      windowBars.setAttribute("d", windowPath || "M0,0");
      farBars.setAttribute("d", farPath || "M0,0");
      windowShare.textContent = percent(windowTotal) + " %";
      farShare.textContent = percent(farTotal) + " %";
      var character = data.text[t];
      var message = fill(words.readout, {
        pos: t, char: character === "\n" ? words.newline : character === " " ? words.space
                                                                              : character,
        layer: state.layer + 1, model: words[state.model] || state.model,
        window: percent(windowTotal), far: percent(farTotal), s: s,
      });
      var top = data.models[state.model].far_top_channel;
      if (top && t >= s) message += " " + fill(words.top, { top: (top[state.layer][t] / 10).toFixed(1) });
      readout.textContent = message;
      root.setAttribute("data-selected", String(t));
    }

    function select(pos) {
      state.pos = Math.max(0, Math.min(T - 1, pos));
      show();
      var span = chars[state.pos];
      if (document.activeElement === text && span.scrollIntoView) {
        span.scrollIntoView({ block: "nearest" });
      }
    }

    // The character above or below on screen (the text wraps, so lines are visual)
    function vertical(direction) {
      var here = chars[state.pos].getBoundingClientRect();
      var best = -1, bestScore = Infinity;
      chars.forEach(function (span, pos) {
        var box = span.getBoundingClientRect();
        var dy = (box.top - here.top) * direction;
        if (dy < here.height / 2) return;
        var score = dy * 1000 + Math.abs(box.left - here.left);
        if (score < bestScore) { bestScore = score; best = pos; }
      });
      return best < 0 ? state.pos : best;
    }

    text.addEventListener("keydown", function (event) {
      var moves = {
        ArrowLeft: function () { return state.pos - 1; },
        ArrowRight: function () { return state.pos + 1; },
        ArrowUp: function () { return vertical(-1); },
        ArrowDown: function () { return vertical(1); },
        PageUp: function () { return state.pos - s; },
        PageDown: function () { return state.pos + s; },
        Home: function () { return 0; },
        End: function () { return T - 1; },
      };
      if (!moves[event.key]) return;
      event.preventDefault();
      select(moves[event.key]());
    });
    text.addEventListener("focus", function () {
      if (state.pos < 0) select(T - 1);
    });
    text.addEventListener("pointerover", function (event) {
      var span = event.target.closest ? event.target.closest("[data-pos]") : null;
      if (span && event.pointerType === "mouse") select(Number(span.getAttribute("data-pos")));
    });
    text.addEventListener("click", function (event) {
      var span = event.target.closest ? event.target.closest("[data-pos]") : null;
      if (span) select(Number(span.getAttribute("data-pos")));
    });

    // Start on a late position, so that the far keys show before anyone touches anything
    select(Math.min(200, T - 1));
  }

  function start() {
    document.querySelectorAll("[data-aft-explorer]").forEach(function (root) {
      if (!root.hasAttribute("data-ready")) {
        root.setAttribute("data-ready", "");
        Explorer(root);
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
