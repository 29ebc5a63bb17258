// Loss reason is only asked for (and required by the service) when the lost stage is chosen.
(function () {
  var select = document.getElementById("stage-select");
  if (!select) return;
  var fields = document.getElementById("loss-fields");
  function sync() { fields.classList.toggle("d-none", select.selectedOptions[0].dataset.kind !== "lost"); }
  select.addEventListener("change", sync); sync();
})();
