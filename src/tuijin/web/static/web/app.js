// Behaviour shared by every page, kept out of the markup so the Content-Security-Policy can forbid
// inline scripts: selects marked data-autosubmit submit their form on change; links marked
// data-history-back go back one page.
(function () {
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.matches && el.matches("[data-autosubmit]") && el.form) el.form.submit();
  });
  document.addEventListener("click", function (event) {
    var link = event.target && event.target.closest && event.target.closest("[data-history-back]");
    if (link && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });
})();
