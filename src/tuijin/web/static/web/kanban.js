/* Kanban drag and drop: a drop posts the stage change; any refusal puts the card back where it was. */
(function () {
  "use strict";
  var board = document.getElementById("kanban");
  if (!board || !window.Sortable) return;
  var texts = JSON.parse(document.getElementById("kanban-texts").textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var alertBox = document.getElementById("kanban-alert");
  var modalEl = document.getElementById("loss-modal");
  var modal = window.bootstrap ? bootstrap.Modal.getOrCreateInstance(modalEl, { backdrop: "static" }) : null;

  function showAlert(message) {
    alertBox.textContent = message;
    alertBox.classList.remove("d-none");
    window.scrollTo({ top: 0, behavior: "smooth" });
  }

  function putBack(evt) {
    var ref = evt.from.children[evt.oldIndex] || null;
    evt.from.insertBefore(evt.item, ref);
    recount();
  }

  function recount() {
    board.querySelectorAll(".kanban-column").forEach(function (col) {
      col.querySelector(".col-count").textContent = col.querySelectorAll(".kanban-card").length;
    });
  }

  // Resolves with {reason, note}, or null when the user cancels.
  function askLossReason() {
    return new Promise(function (resolve) {
      var reason = document.getElementById("loss-modal-reason");
      var note = document.getElementById("loss-modal-note");
      reason.value = ""; note.value = "";
      var ok = document.getElementById("loss-modal-ok");
      var cancel = document.getElementById("loss-modal-cancel");
      function done(value) {
        ok.removeEventListener("click", onOk); cancel.removeEventListener("click", onCancel);
        if (modal) modal.hide();
        resolve(value);
      }
      function onOk() {
        if (!reason.value) { reason.classList.add("is-invalid"); return; }
        reason.classList.remove("is-invalid");
        done({ reason: reason.value, note: note.value });
      }
      function onCancel() { done(null); }
      ok.addEventListener("click", onOk); cancel.addEventListener("click", onCancel);
      if (modal) { modal.show(); } else { onCancel(); }
    });
  }

  function move(evt) {
    var card = evt.item;
    var target = evt.to;
    var body = new FormData();
    body.append("stage_id", target.dataset.stageId);
    body.append("version", card.dataset.version);
    var ready = target.dataset.stageKind === "lost" ? askLossReason() : Promise.resolve({});
    ready.then(function (loss) {
      if (loss === null) { putBack(evt); return; }
      if (loss.reason) { body.append("loss_reason", loss.reason); body.append("loss_note", loss.note || ""); }
      var url = board.dataset.stageUrl.replace("/0/", "/" + card.dataset.opportunityId + "/");
      card.classList.add("opacity-50");
      fetch(url, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (data) {
          card.classList.remove("opacity-50");
          if (resp.ok && data.ok) {
            card.dataset.version = data.version;
            alertBox.classList.add("d-none");
            recount();
            return;
          }
          var message = (data.errors || []).join(" ") || texts.failed;
          if (resp.status === 409 && !data.errors) message = texts.stale;
          showAlert(message);
          putBack(evt);
        });
      }).catch(function () {
        card.classList.remove("opacity-50");
        showAlert(texts.network);
        putBack(evt);
      });
    });
  }

  board.querySelectorAll(".kanban-cards").forEach(function (list) {
    Sortable.create(list, {
      group: "kanban",
      animation: 150,
      // Mouse-event fallback behaves the same on touch phones, desktop browsers and automated tests.
      forceFallback: true,
      fallbackTolerance: 3,
      onEnd: function (evt) { if (evt.from !== evt.to) move(evt); },
    });
  });
})();
