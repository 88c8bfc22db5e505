// Accessible names that contain the text a button shows (WCAG 2.5.3, "label in name"; axe-core's
// label-content-name-mismatch). The theme's search field says "Search Ctrl+K" but is named
// "Search", and its colour-mode button names its icons "Light", "Dark", "System Settings" inside
// a button named "Color mode". Both buttons exist only with JavaScript (pst-js-only), so this
// script is where they are fixed: the search field is named by what it shows, and the icons lose
// their inner titles (the button keeps its name and its tooltip).
(function () {
  function fix() {
    document.querySelectorAll(".search-button-field[aria-label]").forEach(function (button) {
      button.removeAttribute("aria-label");
    });
    document.querySelectorAll(".theme-switch-button .theme-switch[title]").forEach(function (icon) {
      icon.removeAttribute("title");
      icon.setAttribute("aria-hidden", "true");
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
