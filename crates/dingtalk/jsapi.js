function (p) {
  return new Promise(function (ok, ko) {
    var fail = function (e) { ko(new Error(typeof e === 'string' ? e : JSON.stringify(e))); };
    var done = function (r) { ok(r.authCode || r.code); };
    dd.ready(function () {
      if (dd.getAuthCode) { dd.getAuthCode({ corpId: p.corpId, success: done, fail: fail }); }
      else { dd.runtime.permission.requestAuthCode({ corpId: p.corpId, onSuccess: done, onFail: fail }); }
    });
  });
}
