/* §10 pages: the configure page's forms and buttons. No inline script (CSP); served by the app.
 * Every change is a POST with a fresh context token from Atlassian's bridge
 * (AP.context.getToken) in `Authorization: JWT`, and the action token the server put into this
 * page in `X-Action-Token`. After a change the page asks Jira to reload it (AP.navigator.reload),
 * which frames it again with a fresh `?jwt=`. */
(function () {
  "use strict";

  var body = document.body;
  var statusBox = document.getElementById("status");

  function bridge() {
    return window.AP || null;
  }

  function resize() {
    var ap = bridge();
    if (ap && typeof ap.resize === "function") {
      ap.resize();
    }
  }

  function show(message, kind) {
    if (!statusBox) {
      return;
    }
    statusBox.textContent = message;
    statusBox.className = "notice notice-" + kind;
    statusBox.hidden = false;
    resize();
  }

  function contextToken() {
    return new Promise(function (resolve, reject) {
      var ap = bridge();
      if (!ap || !ap.context || typeof ap.context.getToken !== "function") {
        reject(new Error("Jira's page bridge is not available; open this page from Jira."));
        return;
      }
      ap.context.getToken(function (token) {
        if (token) {
          resolve(token);
        } else {
          reject(new Error("Jira did not give a token; reload the page."));
        }
      });
    });
  }

  function post(path, payload) {
    var url = body.getAttribute("data-configure-url") + path;
    return contextToken().then(function (token) {
      return fetch(url, {
        method: "POST",
        credentials: "omit",
        referrerPolicy: "no-referrer",
        headers: {
          "Authorization": "JWT " + token,
          "X-Action-Token": body.getAttribute("data-action-token") || "",
          "Content-Type": "application/json"
        },
        body: JSON.stringify(payload || {})
      });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) {
          throw new Error(answer.detail || ("The change was refused (" + response.status + ")."));
        }
        return answer;
      });
    });
  }

  function reloadSoon() {
    window.setTimeout(function () {
      var ap = bridge();
      if (ap && ap.navigator && typeof ap.navigator.reload === "function") {
        ap.navigator.reload();
      } else {
        window.location.reload();
      }
    }, 600);
  }

  function busy(control, on) {
    if (control) {
      control.disabled = on;
    }
  }

  function run(control, path, payload, done) {
    busy(control, true);
    show("Working…", "info");
    post(path, payload).then(function () {
      show(done, "success");
      reloadSoon();
    }).catch(function (error) {
      busy(control, false);
      show(error.message, "error");
    });
  }

  function settingsOf(form) {
    var payload = {
      sentry_url: form.elements.sentry_url.value.trim(),
      sync_status: form.elements.sync_status.checked,
      sync_assignee: form.elements.sync_assignee.checked,
      skip_archived: form.elements.skip_archived.checked,
      resolution_strategy: form.elements.resolution_strategy.value
    };
    var token = form.elements.sentry_token.value;
    if (token) {
      payload.sentry_token = token;  // empty: the stored token is kept
    }
    return payload;
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.binding-form"), function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var org = form.getAttribute("data-org") || form.elements.org.value.trim();
      if (!org) {
        show("Enter the organization slug.", "error");
        return;
      }
      var button = form.querySelector("button[type=submit]");
      run(button, "orgs/" + encodeURIComponent(org) + "/", settingsOf(form),
          "Saved " + org + ".");
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll("button.unbind"), function (button) {
    button.addEventListener("click", function () {
      var org = button.getAttribute("data-org");
      run(button, "orgs/" + encodeURIComponent(org) + "/unbind/", {}, "Unbound " + org + ".");
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll("button.retry"), function (button) {
    button.addEventListener("click", function () {
      var id = button.getAttribute("data-dead-letter");
      run(button, "dead-letters/" + encodeURIComponent(id) + "/retry/", {},
          "Dead letter " + id + " queued again.");
    });
  });

  resize();
}());
