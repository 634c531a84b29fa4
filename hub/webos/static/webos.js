// Velocity WebOS enhancements; every page works without this script (plain forms and links).
// - kanban: drag a card to a column, or use its stage select + Move, without a page reload;
// - live: regions marked data-live are refreshed in place when the tenant's records change;
// - forms marked data-confirm ask before submitting.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf || "";
  const status = document.getElementById("live-status");

  let saidAt = 0;

  function say(text, isError) {
    if (!status) return;
    saidAt = Date.now();
    status.textContent = text;
    status.hidden = false;
    status.className = "flash " + (isError ? "flash-error" : "flash-live");
    status.setAttribute("role", isError ? "alert" : "status");
  }

  // --- confirmations -------------------------------------------------------------------------
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // --- kanban --------------------------------------------------------------------------------
  async function moveLead(card, stage) {
    const body = new URLSearchParams({ csrf_token: csrf, stage: stage });
    let response;
    try {
      response = await fetch("/crm/leads/" + encodeURIComponent(card.dataset.lead) + "/stage", {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      });
    } catch (err) {
      say("The hub could not be reached; the lead was not moved.", true);
      return false;
    }
    const answer = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      say(answer.detail || "The move was refused.", true);
      return false;
    }
    const column = document.querySelector('.column[data-stage="' + stage + '"]');
    if (column && card.parentElement !== column) {
      const anchor = column.querySelector(".lead-card, p.muted");
      column.insertBefore(card, anchor);
      updateCounts();
    }
    const select = card.querySelector("select[name=stage]");
    if (select) select.value = stage;
    say(answer.detail || "Lead moved.", false);
    return true;
  }

  function updateCounts() {
    document.querySelectorAll(".column").forEach(function (column) {
      const badge = column.querySelector("h2 .badge");
      const hidden = column.querySelector("p.muted");
      const more = hidden ? parseInt(hidden.textContent.replace(/\D/g, ""), 10) || 0 : 0;
      if (badge) badge.textContent = column.querySelectorAll(".lead-card").length + more;
    });
  }

  function setupKanban(board) {
    let dragged = null;
    board.addEventListener("dragstart", function (event) {
      const card = event.target.closest && event.target.closest(".lead-card");
      if (!card) return;
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.dataset.lead);
    });
    board.addEventListener("dragend", function () {
      if (dragged) dragged.classList.remove("dragging");
      board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
      dragged = null;
    });
    board.addEventListener("dragover", function (event) {
      const column = event.target.closest && event.target.closest(".column");
      if (!column || !dragged) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      board.querySelectorAll(".drop-target").forEach(function (c) {
        if (c !== column) c.classList.remove("drop-target");
      });
      column.classList.add("drop-target");
    });
    board.addEventListener("drop", function (event) {
      const column = event.target.closest && event.target.closest(".column");
      if (!column || !dragged) return;
      event.preventDefault();
      column.classList.remove("drop-target");
      if (dragged.parentElement !== column) moveLead(dragged, column.dataset.stage);
    });
    // The keyboard path: the card's stage select and Move button, without a reload.
    board.addEventListener("submit", function (event) {
      const form = event.target.closest(".move-form");
      if (!form) return;
      event.preventDefault();
      const card = form.closest(".lead-card");
      const select = form.querySelector("select[name=stage]");
      moveLead(card, select.value).then(function () { select.focus(); });
    });
  }

  const board = document.getElementById("kanban");
  if (board) setupKanban(board);

  // --- live refresh --------------------------------------------------------------------------
  // /webos/events streams one "change" event per record in scope that changed (any edge, any
  // hub); the page's data-live regions are then fetched again and swapped in place.
  const regions = document.querySelectorAll("[data-live]");
  let timer = null;

  function editing(region) {
    const active = document.activeElement;
    return active && region.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  async function refresh() {
    timer = null;
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok || !(response.headers.get("content-type") || "").includes("text/html")) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    let changed = 0;
    document.querySelectorAll("[data-live]").forEach(function (region) {
      const fresh = doc.querySelector('[data-live="' + region.dataset.live + '"]');
      if (!fresh || editing(region) || fresh.innerHTML === region.innerHTML) return;
      region.innerHTML = fresh.innerHTML;
      changed += 1;
    });
    // a refusal or a confirmation just shown stays readable: the refresh note waits its turn
    if (changed && Date.now() - saidAt > 8000) {
      say("Updated with the latest changes from the field.", false);
    }
  }

  function soon() {
    if (timer === null) timer = window.setTimeout(refresh, 300);
  }

  if (regions.length && window.EventSource) {
    const events = new EventSource("/webos/events");
    events.addEventListener("change", soon);
    events.addEventListener("reset", soon);
    events.addEventListener("closed", function () {
      events.close();
      say("Your session ended; reload the page to sign in again.", true);
    });
    window.addEventListener("pagehide", function () { events.close(); });
  }
})();
