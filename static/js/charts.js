/* Draws every chart on the page with plotly.js (served from our static files). A chart is an
 * element with data-chart="<id of a script type=application/json holding the figure>" and
 * data-chart-config="<id of the config JSON>". No inline script is needed. */
(function () {
  "use strict";

  function json(id) {
    var element = id && document.getElementById(id);
    return element ? JSON.parse(element.textContent) : {};
  }

  function draw() {
    if (!window.Plotly) return;
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (element) {
      var figure = json(element.getAttribute("data-chart"));
      var config = json(element.getAttribute("data-chart-config"));
      window.Plotly.newPlot(element, figure.data || [], figure.layout || {}, config).then(function () {
        element.setAttribute("data-chart-ready", "true");
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
