// evident's web UI: progressive enhancement of server-rendered pages.
// Without this script every page works and shows the state at load time;
// with it, the parts marked .live refresh in place, and alerts arrive
// live from the API's Server-Sent Events stream.
"use strict";
(function () {
  const status = document.getElementById("live-status");
  const announcer = document.getElementById("announcer");
  const liveEvery = Number(document.body.dataset.live || 0);

  // A page opened with ?tenant= (the link of a tenant's alert names it)
  // shows that tenant, and the server names it in the page's links and
  // forms; the alert stream and the links of the alerts that arrive live
  // name it here, or they would show the credentials' tenant
  // (docs/api.md).
  const tenant = new URLSearchParams(location.search).get("tenant") || "";
  function inTenant(href) {
    const u = new URL(href, location.href);
    if (!tenant || u.origin !== location.origin || u.searchParams.has("tenant")) {
      return href;
    }
    u.searchParams.set("tenant", tenant);
    return u.pathname + u.search + u.hash;
  }

  function say(text) {
    if (announcer) {
      announcer.textContent = text;
    }
  }

  // refresh fetches the page again and swaps in each .live part that
  // changed, except one the user is in (focus stays where it is).
  let refreshing = false;
  async function refresh() {
    if (refreshing || document.hidden) {
      return;
    }
    refreshing = true;
    try {
      const resp = await fetch(location.href, { cache: "no-store", credentials: "same-origin" });
      if (!resp.ok) {
        throw new Error("HTTP " + resp.status);
      }
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      for (const fresh of doc.querySelectorAll(".live[id]")) {
        const old = document.getElementById(fresh.id);
        if (!old || old.contains(document.activeElement) || old.innerHTML === fresh.innerHTML) {
          continue;
        }
        // Keep open <details> open.
        const open = new Set(Array.from(old.querySelectorAll("details[open] > summary"), (s) => s.textContent));
        old.replaceWith(fresh);
        for (const s of fresh.querySelectorAll("details > summary")) {
          if (open.has(s.textContent)) {
            s.parentElement.open = true;
          }
        }
      }
      if (status) {
        status.textContent = "live · updated " + new Date().toLocaleTimeString();
      }
    } catch (err) {
      if (status) {
        status.textContent = "not updating (" + err.message + "), retrying";
      }
    } finally {
      refreshing = false;
    }
  }
  if (liveEvery > 0) {
    setInterval(refresh, liveEvery * 1000);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) {
        refresh();
      }
    });
    if (status) {
      status.textContent = "live";
    }
  }
  let soon = 0;
  function refreshSoon() {
    if (liveEvery > 0) {
      clearTimeout(soon);
      soon = setTimeout(refresh, 500);
    }
  }

  // alertRow builds the row of an alert as the server renders it
  // (internal/ui/pages.go, newAlertRow): the evidence is the finding the
  // alert is about, else its service.
  function alertRow(a) {
    const tr = document.createElement("tr");
    tr.dataset.alert = a.id;
    tr.className = "fresh";
    const cell = (child) => {
      const td = document.createElement("td");
      if (typeof child === "string") {
        td.textContent = child;
      } else if (child) {
        td.append(child);
      }
      tr.append(td);
      return td;
    };
    const time = document.createElement("time");
    time.dateTime = a.time;
    time.textContent = "just now";
    time.title = a.time;
    cell(time);
    const sev = document.createElement("span");
    sev.className = "sev s-" + a.severity;
    sev.textContent = a.severity;
    cell(sev);
    cell(a.kind);
    cell(a.service || "");
    const summary = cell(a.summary);
    const details = a.details || {};
    if (details.evidence !== undefined) {
      const d = document.createElement("details");
      const s = document.createElement("summary");
      s.textContent = "details";
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(details.evidence, null, 2);
      d.append(s, pre);
      summary.append(d);
    }
    let href = "";
    if (details.finding_link) {
      href = "/ui/findings/" + encodeURIComponent(details.finding_link.split("?")[0].split("/").pop());
    } else if (a.service === "." || a.service === "..") {
      // As servicePath (internal/ui/ui.go): a browser resolves
      // /ui/services/.. to /ui/.
      href = "/ui/services?name=" + encodeURIComponent(a.service);
    } else if (a.service) {
      href = "/ui/services/" + encodeURIComponent(a.service);
    }
    if (href) {
      const link = document.createElement("a");
      link.href = inTenant(href);
      link.textContent = "evidence";
      const context = document.createElement("span");
      context.className = "visually-hidden";
      context.textContent = " of the " + a.kind + " alert in " + (a.service || "");
      link.append(context);
      cell(link);
    } else {
      cell("");
    }
    return tr;
  }

  const table = document.getElementById("alerts");
  const badge = document.getElementById("alert-badge");
  const streamState = document.getElementById("stream-state");
  let unseen = 0;
  // The stream is opened while the page is shown and closed when it is
  // left: a browser gives a host six HTTP/1.1 connections, and streams
  // of pages kept in the back/forward cache would hold them.
  let es = null;
  function openStream() {
    if (!window.EventSource || es) {
      return;
    }
    es = new EventSource(inTenant("/api/v1/alerts/stream"));
    es.onopen = () => {
      if (streamState) {
        streamState.textContent = "live";
      }
    };
    es.onerror = () => {
      if (streamState) {
        streamState.textContent = "stream interrupted, reconnecting";
      }
    };
    es.addEventListener("alert", (ev) => {
      let a;
      try {
        a = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (table) {
        if ((table.dataset.service && table.dataset.service !== a.service) || (table.dataset.kind && table.dataset.kind !== a.kind)) {
          return;
        }
        table.tBodies[0].prepend(alertRow(a));
        const none = document.getElementById("no-alerts");
        if (none) {
          none.remove();
        }
      } else if (badge) {
        unseen++;
        badge.textContent = unseen + " new";
        badge.hidden = false;
      }
      say("New alert: " + a.summary);
      // An alert means the evidence changed: show it now.
      refreshSoon();
    });
  }
  openStream();
  window.addEventListener("pageshow", openStream);
  window.addEventListener("pagehide", () => {
    if (es) {
      es.close();
      es = null;
    }
  });
})();
