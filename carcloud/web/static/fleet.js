// carcloud fleet live page: polls /api/v1/fleet once a second and redraws without reloading.
"use strict";

const SIG = {
  speed: "Vehicle.Speed",
  lat: "Vehicle.CurrentLocation.Latitude",
  lon: "Vehicle.CurrentLocation.Longitude",
  heading: "Vehicle.CurrentLocation.Heading",
  soc: "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
  fuel: "Vehicle.Powertrain.FuelSystem.RelativeLevel",
  range: "Vehicle.Powertrain.Range",
  charging: "Vehicle.Powertrain.TractionBattery.Charging.IsCharging",
  moving: "Vehicle.IsMoving",
};
const PALETTE = ["#58a6ff", "#f778ba", "#3fb950", "#d29922", "#a371f7", "#ff7b72"];
const TRAIL = 40;

const state = { key: null, brand: null, sort: "brand", desc: false, trails: new Map(), colors: new Map(), vehicles: [] };

function takeKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromUrl = fragment.get("key");
  if (fromUrl) {
    sessionStorage.setItem("carcloud-key", fromUrl);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("carcloud-key");
}

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function brandColor(brand) {
  if (!state.colors.has(brand)) state.colors.set(brand, PALETTE[state.colors.size % PALETTE.length]);
  return state.colors.get(brand);
}

function vehicleState(v) {
  const s = v.signals;
  if (!v.online) return "offline";
  if (s[SIG.charging]) return "charging";
  if (s[SIG.moving]) return "driving";
  return "parked";
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function energyCell(v) {
  const s = v.signals;
  const soc = s[SIG.soc], fuel = s[SIG.fuel];
  const value = soc ?? fuel;
  if (value === undefined) return '<span class="muted">–</span>';
  const kind = soc !== undefined ? "battery" : "fuel";
  const colour = value < 20 ? "#ff7b72" : value < 40 ? "#d29922" : "#3fb950";
  return `<span class="bar"><i style="width:${Math.min(100, value)}%;background:${colour}"></i></span>${value.toFixed(0)} % <span class="muted">${kind}</span>`;
}

function sortKey(v) {
  const s = v.signals;
  switch (state.sort) {
    case "speed": return s[SIG.speed] ?? -1;
    case "energy": return s[SIG.soc] ?? s[SIG.fuel] ?? -1;
    case "range": return s[SIG.range] ?? -1;
    case "state": return vehicleState(v);
    case "seen": return v.last_seen_at || "";
    default: return v[state.sort] ?? "";
  }
}

function renderTable(vehicles) {
  const rows = [...vehicles].sort((a, b) => {
    const x = sortKey(a), y = sortKey(b);
    const order = x < y ? -1 : x > y ? 1 : a.vin < b.vin ? -1 : 1;
    return state.desc ? -order : order;
  });
  const body = document.querySelector("#fleet tbody");
  body.innerHTML = rows.map((v) => {
    const s = v.signals;
    const st = vehicleState(v);
    const pos = s[SIG.lat] !== undefined ? `${s[SIG.lat].toFixed(4)}, ${s[SIG.lon].toFixed(4)}` : "–";
    const range = s[SIG.range] !== undefined ? `${(s[SIG.range] / 1000).toFixed(0)} km` : "–";
    const speed = s[SIG.speed] !== undefined ? `${s[SIG.speed].toFixed(0)} km/h` : "–";
    return `<tr data-vin="${esc(v.vin)}">
      <td class="vin">${esc(v.vin)}</td>
      <td><span class="dot" style="background:${brandColor(v.brand)}"></span>${esc(v.brand)}</td>
      <td>${esc(v.model)} <span class="muted">${esc(v.model_year)}</span></td>
      <td><span class="dot ${v.online ? "on" : "off"}"></span>${st}</td>
      <td class="num">${speed}</td>
      <td>${energyCell(v)}</td>
      <td class="num">${range}</td>
      <td class="muted">${pos}</td>
      <td class="muted">${ago(v.last_seen_at)}</td>
    </tr>`;
  }).join("");
}

function renderFilters(brands) {
  const nav = document.getElementById("filters");
  const wanted = ["all", ...brands].join(",");
  if (nav.dataset.brands === wanted) return;
  nav.dataset.brands = wanted;
  nav.innerHTML = "";
  for (const brand of ["all", ...brands]) {
    const button = document.createElement("button");
    button.textContent = brand === "all" ? "All brands" : brand;
    button.dataset.brand = brand;
    button.onclick = () => { state.brand = brand === "all" ? null : brand; draw(); };
    nav.appendChild(button);
  }
}

function mapFor(brand) {
  let panel = document.querySelector(`.map[data-brand="${brand}"]`);
  if (!panel) {
    panel = document.createElement("div");
    panel.className = "map";
    panel.dataset.brand = brand;
    panel.innerHTML = `<h3><span class="dot" style="background:${brandColor(brand)}"></span>${esc(brand)}</h3><canvas></canvas>`;
    document.getElementById("maps").appendChild(panel);
  }
  return panel.querySelector("canvas");
}

function renderMap(brand, vehicles) {
  const canvas = mapFor(brand);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const points = [];
  for (const v of vehicles) for (const p of state.trails.get(v.vin) || []) points.push(p);
  if (!points.length) {
    ctx.fillStyle = "#6e7681"; ctx.fillText("waiting for positions…", 12, 20);
    return;
  }
  let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
  for (const [lat, lon] of points) {
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
  }
  const midLat = (minLat + maxLat) / 2;
  const kx = Math.cos(midLat * Math.PI / 180);
  const spanX = Math.max((maxLon - minLon) * kx, 0.01), spanY = Math.max(maxLat - minLat, 0.01);
  const scale = Math.min((width - 30) / spanX, (height - 30) / spanY);
  const x = (lon) => 15 + ((lon - minLon) * kx) * scale + (width - 30 - spanX * scale) / 2;
  const y = (lat) => height - 15 - (lat - minLat) * scale - (height - 30 - spanY * scale) / 2;
  // A faint grid gives a sense of scale: one line per kilometre where it fits.
  ctx.strokeStyle = "#141c25"; ctx.lineWidth = 1;
  const step = 0.009;
  for (let lat = Math.floor(minLat / step) * step; lat <= maxLat; lat += step) {
    ctx.beginPath(); ctx.moveTo(0, y(lat)); ctx.lineTo(width, y(lat)); ctx.stroke();
  }
  for (let lon = Math.floor(minLon / (step / kx)) * (step / kx); lon <= maxLon; lon += step / kx) {
    ctx.beginPath(); ctx.moveTo(x(lon), 0); ctx.lineTo(x(lon), height); ctx.stroke();
  }
  const colour = brandColor(brand);
  for (const v of vehicles) {
    const trail = state.trails.get(v.vin) || [];
    if (trail.length > 1) {
      ctx.strokeStyle = colour + "55"; ctx.lineWidth = 2; ctx.beginPath();
      trail.forEach(([lat, lon], i) => (i ? ctx.lineTo(x(lon), y(lat)) : ctx.moveTo(x(lon), y(lat))));
      ctx.stroke();
    }
    const last = trail[trail.length - 1];
    if (!last) continue;
    const st = vehicleState(v);
    ctx.beginPath(); ctx.arc(x(last[1]), y(last[0]), st === "driving" ? 4.5 : 3.5, 0, Math.PI * 2);
    if (v.online) { ctx.fillStyle = st === "charging" ? "#3fb950" : colour; ctx.fill(); }
    else { ctx.strokeStyle = "#6e7681"; ctx.lineWidth = 1.5; ctx.stroke(); }
  }
}

function draw() {
  const shown = state.vehicles.filter((v) => !state.brand || v.brand === state.brand);
  document.querySelectorAll("#filters button").forEach((b) =>
    b.classList.toggle("on", (b.dataset.brand === "all" && !state.brand) || b.dataset.brand === state.brand));
  const brands = [...new Set(state.vehicles.map((v) => v.brand))].sort();
  renderFilters(brands);
  for (const brand of brands) {
    const panel = document.querySelector(`.map[data-brand="${brand}"]`);
    const visible = !state.brand || state.brand === brand;
    if (panel) panel.hidden = !visible;
    if (visible) renderMap(brand, state.vehicles.filter((v) => v.brand === brand));
  }
  renderTable(shown);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/v1/fleet?limit=5000", { headers: { Authorization: `Bearer ${state.key}` } });
    if (response.status === 401) { sessionStorage.removeItem("carcloud-key"); showLogin("That key was not accepted."); return; }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    state.vehicles = data.vehicles;
    for (const v of data.vehicles) {
      const s = v.signals;
      if (s[SIG.lat] === undefined) continue;
      const trail = state.trails.get(v.vin) || [];
      const last = trail[trail.length - 1];
      if (!last || last[0] !== s[SIG.lat] || last[1] !== s[SIG.lon]) trail.push([s[SIG.lat], s[SIG.lon]]);
      if (trail.length > TRAIL) trail.shift();
      state.trails.set(v.vin, trail);
    }
    const sum = data.summary;
    document.getElementById("c-vehicles").textContent = sum.vehicles;
    document.getElementById("c-online").textContent = sum.online;
    document.getElementById("c-driving").textContent = sum.driving;
    document.getElementById("c-charging").textContent = sum.charging;
    document.getElementById("c-soc").textContent = sum.average_soc === null ? "–" : `${sum.average_soc} %`;
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    status.className = "status live";
    draw();
  } catch (error) {
    status.textContent = `cannot reach carcloud (${error.message}); retrying`;
    status.className = "status down";
  }
  setTimeout(poll, 1000);
}

function showLogin(message) {
  document.getElementById("app").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("status").textContent = message || "an API key is needed";
}

document.getElementById("login-form").onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem("carcloud-key", document.getElementById("key-input").value.trim());
  location.reload();
};
document.querySelectorAll("th[data-sort]").forEach((th) => {
  th.onclick = () => {
    state.desc = state.sort === th.dataset.sort ? !state.desc : false;
    state.sort = th.dataset.sort;
    draw();
  };
});

state.key = takeKey();
if (state.key) { document.getElementById("app").hidden = false; poll(); } else { showLogin(); }
