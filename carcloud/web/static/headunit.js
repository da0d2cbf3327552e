// What a car's screen shows, from GET /api/v1/vehicles/{vin}/headunit, polled every 2 s;
// the countdown ticks every second between polls. The key comes from #key= (kept in
// sessionStorage, removed from the address bar), as on the fleet page.
"use strict";

const vin = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
let key = null;
let view = null;
let fetchedAt = 0;

function takeKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromUrl = fragment.get("key");
  if (fromUrl) {
    sessionStorage.setItem("carcloud-key", fromUrl);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("carcloud-key");
}

function text(id, value) { document.getElementById(id).textContent = value; }

function button(id, href) {
  const link = document.getElementById(id);
  link.hidden = !href;
  if (href) link.href = href;
}

function countdown() {
  const next = view && view.next_meeting;
  if (!next || next.leave_in_s === null) { text("countdown", "–"); return; }
  const left = next.leave_in_s - Math.round((Date.now() - fetchedAt) / 1000);
  const minutes = Math.floor(Math.abs(left) / 60), seconds = Math.abs(left) % 60;
  const shown = `${minutes}:${String(seconds).padStart(2, "0")}`;
  const element = document.getElementById("countdown");
  element.textContent = left >= 0 ? shown : `now (${shown} late)`;
  element.classList.toggle("late", left < 0);
}

function render() {
  text("vin", view.vin);
  const zone = view.driver ? view.driver.timezone : "UTC";
  text("clock", new Date().toLocaleTimeString("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit" }));
  const next = view.next_meeting;
  document.getElementById("next").hidden = !next;
  document.getElementById("empty").hidden = !!next;
  if (next) {
    text("next-title", next.title);
    text("next-when", `at ${next.start_local}`);
    text("next-where", next.location || "");
    const plan = next.leave_by;
    let detail = "no position or place known yet";
    if (plan) {
      detail = `${Math.round(plan.travel.minutes)} min drive · ${plan.travel.distance_km} km · buffer ${plan.buffer_min} min`;
      if (plan.charging_stop) detail += ` · charging stop ${Math.round(plan.charging_stop.minutes)} min`;
      if (plan.late_by_min > 0) detail += ` · late by ${plan.late_by_min} min`;
    }
    text("leave-detail", detail);
    button("navigate", next.navigate ? `geo:${next.navigate.lat},${next.navigate.lon}` : null);
    button("join", next.join ? next.join.url : null);
    button("dial", next.dial_in);
  }
  const list = document.getElementById("cards");
  list.replaceChildren(...view.cards.map((sent) => {
    const item = document.createElement("li");
    item.className = sent.card.kind;
    item.dataset.id = sent.id;
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = sent.card.title;
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = sent.card.body;
    item.append(title, body);
    return item;
  }));
  countdown();
}

async function poll() {
  try {
    const response = await fetch(`/api/v1/vehicles/${encodeURIComponent(vin)}/headunit`,
                                 { headers: { Authorization: `Bearer ${key}` } });
    if (response.status === 401) {
      sessionStorage.removeItem("carcloud-key");
      document.getElementById("login").hidden = false;
      text("status", "that key was not accepted");
      return;
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      text("status", `${response.status}: ${problem.message || response.statusText}`);
    } else {
      view = await response.json();
      fetchedAt = Date.now();
      render();
      text("status", `live · updated ${new Date().toLocaleTimeString()}`);
    }
  } catch (error) {
    text("status", `offline: ${error}`);
  }
  setTimeout(poll, 2000);
}

key = takeKey();
if (key) { poll(); setInterval(countdown, 1000); } else { document.getElementById("login").hidden = false; }
