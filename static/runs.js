// The training timeline: a range input that swaps the epoch grid (without JS: the links below).
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var fig = document.querySelector("figure.timeline");
  if (!fig) { return; }
  var epochs = fig.getAttribute("data-epochs").split(",");
  var run = fig.getAttribute("data-run");
  var img = document.getElementById("timeline-img");
  var out = document.getElementById("timeline-epoch");
  var slider = document.getElementById("timeline-slider");
  slider.addEventListener("input", function () {
    var e = epochs[Number(slider.value)];
    img.src = "/images/runs/" + encodeURIComponent(run) + "/epochs/" + e + ".png";
    img.alt = "samples after epoch " + e;
    out.textContent = e;
    document.querySelectorAll("nav.epochs a").forEach(function (a) {
      if (a.textContent === e) { a.setAttribute("aria-current", "true"); }
      else { a.removeAttribute("aria-current"); }
    });
  });
}());
