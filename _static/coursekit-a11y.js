// Accessible names that contain the text a button shows (WCAG 2.5.3, "label in name"; axe-core's
// label-content-name-mismatch). The theme's search field says "Search Ctrl+K" but is named
// "Search", and its colour-mode button names its icons "Light", "Dark", "System Settings" inside
// a button named "Color mode". Both buttons exist only with JavaScript (pst-js-only), so this
// script is where they are fixed: the search field is named by what it shows, and the icons lose
// their inner titles, also once Font Awesome has drawn them as <svg> (the button keeps its name
// and its tooltip).
(function () {
  function fix() {
    document.querySelectorAll(".search-button-field[aria-label]").forEach(function (button) {
      button.removeAttribute("aria-label");
    });
    document.querySelectorAll(".theme-switch-button .theme-switch[title]").forEach(function (icon) {
      icon.removeAttribute("title");
      icon.setAttribute("aria-hidden", "true");
    });
    // Font Awesome may have turned an icon into an <svg> first, its title into a <title> child
    // that names the icon: the same fix for the drawn icons
    document.querySelectorAll(".theme-switch-button svg").forEach(function (svg) {
      svg.querySelectorAll("title").forEach(function (title) { title.remove(); });
      if (svg.hasAttribute("aria-labelledby")) svg.removeAttribute("aria-labelledby");
      if (svg.getAttribute("aria-hidden") !== "true") svg.setAttribute("aria-hidden", "true");
    });
  }
  // whenever this script runs (deferred or not), once the theme's own scripts have run, and
  // whenever a script puts a title or label back
  function start() {
    fix();
    new MutationObserver(fix).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      attributeFilter: ["title", "aria-label"]});
  }
  window.coursekitA11yFix = fix;  // the browser check runs it once more before axe-core looks
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  window.addEventListener("load", fix);
})();
