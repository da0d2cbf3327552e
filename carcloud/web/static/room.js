// A person in a carcloud audio room: the join token comes in #token= (kept in
// sessionStorage, removed from the address bar); signalling goes through carcloud's
// API with it (lobby, join with the SDP offer, roster polled every 1.5 s, self-mute,
// leave), the same endpoints a car's call module uses. The media server is never
// reached except by the WebRTC media itself.
"use strict";

const roomId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const api = `/api/v1/rooms/${encodeURIComponent(roomId)}`;
const POLL_MS = 1500;
const GATHER_MS = 3000;

const state = { token: null, needsPin: false, peer: null, stream: null, muted: false, poller: null, joined: false, leaving: false };
window.carcloudRoom = state;  // the peer connection, for diagnostics (getStats)

const $ = (id) => document.getElementById(id);

function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const key = `carcloud-room-token:${roomId}`;
  const fromUrl = fragment.get("token");
  if (fromUrl) {
    sessionStorage.setItem(key, fromUrl);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem(key);
}

function status(message) { $("status").textContent = message; }

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function post(path, body) {
  let response;
  try {
    response = await fetch(`${api}/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, `carcloud cannot be reached (${error.message})`);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer.message || response.statusText);
  return answer;
}

// What a person should read for an error of the room's API.
function explain(error) {
  const message = error.message || String(error);
  if (error.status === 401) {
    if (/expired/.test(message)) return "This invite has expired. Ask the organiser for a new link.";
    return "This invite link is not valid for this room. Check the link, or ask for a new one.";
  }
  if (error.status === 403 && /PIN/.test(message)) return "This room needs its PIN. Enter the PIN you were given.";
  if (error.status === 403 && /removed/.test(message)) return "You were removed from this room by an operator.";
  if (error.status === 403 && /closed/.test(message)) return "This room is closed.";
  if (error.status === 409 && /full/.test(message)) return "The room is full. Try again when someone has left.";
  if (error.status === 503) return `Audio rooms are not available right now: ${message}`;
  return message;
}

function showPin(needed) {
  state.needsPin = needed;
  $("pin-row").hidden = !needed;
  $("pin").required = needed;
}

async function enterLobby() {
  state.token = takeToken();
  if (!state.token) {
    showError("This page needs the invite link you were sent (it ends with #token=…).");
    status("no invite");
    return;
  }
  try {
    const lobby = await post("lobby", { token: state.token });
    $("room-name").textContent = lobby.room.name;
    document.title = `${lobby.room.name} · carcloud`;
    $("display").textContent = lobby.display;
    showPin(lobby.needs_pin);
    $("lobby").hidden = false;
    status("ready to join");
  } catch (error) {
    showError(explain(error));
    status("cannot join");
  }
}

function gathered(peer) {
  // Non-trickle signalling: the offer goes with its candidates, as a car's does.
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_MS);
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

function hangUp() {
  clearInterval(state.poller);
  state.poller = null;
  if (state.peer) state.peer.close();
  if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
  state.peer = null;
  state.stream = null;
  state.joined = false;
}

function ended(message) {
  hangUp();
  $("call").hidden = true;
  $("ended").textContent = message;
  $("ended").hidden = false;
  status("not in the room");
}

async function join(event) {
  event.preventDefault();
  showError("");
  const pin = $("pin").value.trim();
  if (state.needsPin && !/^\d{4,12}$/.test(pin)) {
    showError("The PIN is 4 to 12 digits.");
    return;
  }
  $("join").disabled = true;
  try {
    status("asking for the microphone…");
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (error) {
      throw new Error(`The microphone is not available (${error.name}): allow it for this page and try again.`);
    }
    const peer = new RTCPeerConnection({ iceServers: [] });
    state.peer = peer;
    state.stream.getAudioTracks().forEach((track) => peer.addTrack(track, state.stream));
    peer.addEventListener("track", (ev) => { $("audio").srcObject = ev.streams[0] || new MediaStream([ev.track]); });
    peer.addEventListener("connectionstatechange", () => {
      status(`connection: ${peer.connectionState}`);
      if (peer.connectionState === "failed") ended("The audio connection failed. Reload the page to try again.");
    });
    status("connecting…");
    await peer.setLocalDescription(await peer.createOffer({ offerToReceiveAudio: true }));
    await gathered(peer);
    const body = { token: state.token, sdp: peer.localDescription.sdp };
    if (state.needsPin) body.pin = pin;
    const answer = await post("join", body);
    await peer.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    state.joined = true;
    $("lobby").hidden = true;
    $("call").hidden = false;
    status(`connection: ${peer.connectionState}`);
    await refresh();
    state.poller = setInterval(refresh, POLL_MS);
  } catch (error) {
    hangUp();
    if (error.status === 403 && /PIN/.test(error.message)) showPin(true);
    showError(error instanceof ApiError ? explain(error) : error.message);
    status("not in the room");
  } finally {
    $("join").disabled = false;
  }
}

function renderParticipants(roster) {
  const list = $("participants");
  list.replaceChildren();
  for (const person of roster.participants) {
    const item = document.createElement("li");
    item.dataset.id = person.id;
    item.classList.toggle("talking", person.talking);
    item.classList.toggle("muted", person.muted);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = person.display + (person.id === roster.you ? " (you)" : "") + (person.kind === "vehicle" ? " · car" : "");
    const what = document.createElement("span");
    what.className = "state";
    what.textContent = !person.connected ? "connecting" : person.muted ? "muted" : person.talking ? "talking" : "listening";
    item.append(name, what);
    list.append(item);
  }
}

async function refresh() {
  if (!state.joined) return;
  try {
    const roster = await post("roster", { token: state.token });
    // A roster asked for before the person pressed Leave (or the call ended) answers
    // after: it must not replace what the page says now.
    if (!state.joined || state.leaving) return;
    if (roster.you === null) {
      ended("You are no longer in the room (the connection ended or the room closed).");
      return;
    }
    renderParticipants(roster);
  } catch (error) {
    if (!state.joined || state.leaving) return;
    if (error.status === 403 || error.status === 401) ended(explain(error));
    else status(`room list: ${explain(error)}`);
  }
}

async function toggleMute() {
  const muted = !state.muted;
  try {
    await post("self-mute", { token: state.token, muted });
  } catch (error) {
    showError(explain(error));
    return;
  }
  state.muted = muted;
  if (state.stream) state.stream.getAudioTracks().forEach((track) => { track.enabled = !muted; });
  $("mute").textContent = muted ? "Unmute" : "Mute";
  $("mute").classList.toggle("muted", muted);
  refresh();
}

async function leave() {
  state.leaving = true;
  try { await post("leave", { token: state.token }); } catch (error) { /* the room notices the hangup anyway */ }
  ended("You left the room.");
  state.leaving = false;
}

$("join-form").addEventListener("submit", join);
$("mute").addEventListener("click", toggleMute);
$("leave").addEventListener("click", leave);
window.addEventListener("pagehide", () => {
  if (state.joined) navigator.sendBeacon(`${api}/leave`, new Blob([JSON.stringify({ token: state.token })], { type: "application/json" }));
});
enterLobby();
