function (p) {
  return new Promise(function (ok, ko) {
    var err = function (e) { return new Error(typeof e === 'string' ? e : JSON.stringify(e)); };
    var done = function (r) { ok(r.code); };
    var legacy = function (e) {
      if (!tt.requestAuthCode) { ko(err(e)); return; }
      var run = function () {
        tt.requestAuthCode({ appId: p.appId, success: done, fail: function (e2) { ko(err(e2)); } });
      };
      if (window.h5sdk && h5sdk.ready) { h5sdk.ready(run); } else { run(); }
    };
    if (tt.requestAccess) {
      tt.requestAccess({ appID: p.appId, scopeList: [], success: done, fail: legacy });
    } else {
      legacy('tt.requestAccess is not available');
    }
  });
}
