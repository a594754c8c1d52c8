/* The scalar explorer of section 1: h_t = tanh(a h_{t-1} + b x_t + c), y = d h_T, on the
   inputs stored in the page (the article's three, then seeded N(0, 1) draws). From the
   sliders it recomputes, with the same log-space recursion as rnngrad.scalar_chain_rule
   (derivatives as log sech^2): the factors dh_t/dh_{t-1} = a tanh'(z_t), log10 |dy/dh_k|
   and its bound |d| |a|^(T-k), the verdict by the rule of rnngrad.verdict (mean factor per
   step against 1 +- 1%), the substituted chain rule (rendered by KaTeX) and a table of
   every step. */
(function () {
  const X = REPORT.explorer_inputs;
  const LN10 = Math.log(10), TOLERANCE = 0.01;
  function logSech2(z) { const a = Math.abs(z); return 2 * (Math.log(2) - a - Math.log1p(Math.exp(-2 * a))); }
  function compute(p) {
    const T = p.T; let h = 0; const z = [], hs = [];
    for (let t = 0; t < T; t++) { const v = p.a * h + (p.b * X[t] + p.c); z.push(v); h = Math.tanh(v); hs.push(h); }
    const logA = Math.log10(Math.abs(p.a)); const logD = Math.log10(Math.abs(p.d));
    const factors = [], derivatives = [];  // entry t - 2: dh_t/dh_{t-1} = a tanh'(z_t), t = 2..T
    for (let t = 1; t < T; t++) { derivatives.push(logSech2(z[t]) / LN10); factors.push(logA + logSech2(z[t]) / LN10); }
    const grad = new Array(T); let tail = 0; grad[T - 1] = logD;
    for (let k = T - 2; k >= 0; k--) { tail += factors[k]; grad[k] = logD + tail; }
    const bound = []; for (let k = 0; k < T; k++) bound.push(logD + (T - 1 - k) * logA);
    const ks = []; for (let k = 1; k <= T; k++) ks.push(k);
    const sign = Math.sign(p.d) * Math.sign(p.a) ** (T - 1);
    return { k: ks, grad: grad, bound: bound, factors: factors, derivatives: derivatives,
             z: z, h: hs, sign: sign, verdict: verdict(grad[0] - grad[T - 1], T - 1) };
  }
  function verdict(change, steps) {  // rnngrad.verdict.growth_verdict
    if (steps === 0) return { label: 'one_step', change: change, steps: steps };
    if (change === -Infinity) return { label: 'zero', change: change, steps: steps };
    if (!isFinite(change)) return { label: 'overflow', change: change, steps: steps };
    const rate = change / steps, limit = Math.log10(1 + TOLERANCE);
    const label = rate < -limit ? 'vanishing' : rate > limit ? 'exploding' : 'neither';
    return { label: label, change: change, steps: steps, factor: Math.pow(10, rate) };
  }
  function scientific(log10, sign) {  // rnngrad.logspace.format_signed_log10, 4 digits
    if (log10 === -Infinity || sign === 0) return '0';
    if (!isFinite(log10)) return 'undefined';
    let exponent = Math.floor(log10), mantissa = Math.pow(10, log10 - exponent);
    if (Math.round(mantissa * 1000) / 1000 >= 10) { mantissa /= 10; exponent += 1; }
    const e = Math.abs(exponent) < 10 ? '0' + Math.abs(exponent) : '' + Math.abs(exponent);
    return (sign < 0 ? '-' : '') + mantissa.toFixed(3) + 'e' + (exponent < 0 ? '-' : '+') + e;
  }
  function plain(log10, sign) {  // 4 decimals where readable, else scientific
    const value = Math.pow(10, log10);
    return value >= 1e-4 && value < 1e6 ? ((sign < 0 ? '-' : '') + value.toFixed(4)) : scientific(log10, sign);
  }
  function tex(log10, sign) {  // a number for KaTeX: 0.1247, or 1.234 \times 10^{-40}
    const text = plain(log10, sign), at = text.indexOf('e');
    return at < 0 ? text : text.slice(0, at) + ' \\times 10^{' + parseInt(text.slice(at + 1), 10) + '}';
  }
  function g4(value) { return isFinite(value) ? String(parseFloat(value.toPrecision(4))) : 'inf'; }
  function sentence(v) {
    if (v.label === 'one_step') return TEXT.one_step;
    if (v.label === 'zero') return TEXT.zero;
    if (v.label === 'overflow') return TEXT.overflow;
    return TEXT['verdict_' + v.label].replace('{steps}', v.steps)
      .replace('{change}', scientific(v.change, 1)).replace('{factor}', g4(v.factor));
  }
  function formula(p, r) {
    const factors = r.derivatives.map(d => '(' + p.a.toFixed(4) + ' \\times ' + tex(d, 1) + ')');
    const shown = factors.length > 6 ? [...factors.slice(0, 3), '\\cdots', ...factors.slice(-2)] : factors;
    return '\\frac{\\partial y}{\\partial h_1} = ' + p.d.toFixed(4) +
      (shown.length ? ' \\times ' + shown.join(' \\times ') : '') + ' = ' + tex(r.grad[0], r.sign) +
      ', \\qquad |d|\\,|a|^{T-1} = ' + tex(r.bound[0], 1);
  }
  function table(p, r) {
    const rows = [];
    for (let t = 1; t <= p.T; t++) {
      const factor = t > 1 ? plain(r.factors[t - 2], Math.sign(p.a)) : '';
      rows.push('<tr><td>' + t + '</td><td>' + X[t - 1].toFixed(4) + '</td><td>' + r.z[t - 1].toFixed(4) +
        '</td><td>' + (t > 1 ? plain(r.derivatives[t - 2], 1) : '') + '</td><td>' + factor +
        '</td><td>' + scientific(r.grad[t - 1], 1) + '</td><td>' + scientific(r.bound[t - 1], 1) + '</td></tr>');
    }
    return rows.join('');
  }
  function params() {
    const get = id => parseFloat(document.getElementById(id).value);
    return { a: get('ex-a'), b: get('ex-b'), c: get('ex-c'), d: get('ex-d'), T: Math.round(get('ex-T')) };
  }
  function draw() {
    const p = params();
    for (const key of ['a', 'b', 'c', 'd', 'T']) document.getElementById('ex-' + key + '-value').textContent = p[key];
    const r = compute(p);
    const words = document.getElementById('ex-verdict');
    words.textContent = sentence(r.verdict);
    words.className = 'verdict ' + r.verdict.label;
    words.dataset.label = r.verdict.label;
    katex.render(formula(p, r), document.getElementById('ex-formula'), { displayMode: true, throwOnError: true });
    document.querySelector('#ex-table tbody').innerHTML = table(p, r);
    const data = [
      { type: 'scatter', mode: 'lines+markers', name: TEXT.gradient, x: r.k, y: r.grad },
      { type: 'scatter', mode: 'lines', name: TEXT.bound, x: r.k, y: r.bound, line: { dash: 'dash' } }
    ];
    Plotly.react('explorer', data, { title: { text: TEXT.explorer_title },
      xaxis: { title: { text: 'k' }, tickformat: 'd', dtick: p.T <= 12 ? 1 : null }, yaxis: { title: { text: 'log10' } }, height: 360,
      margin: { l: 60, r: 20, t: 40, b: 50 } });
  }
  for (const key of ['a', 'b', 'c', 'd', 'T']) document.getElementById('ex-' + key).addEventListener('input', draw);
  window.rnngradExplorer = { compute: compute, draw: draw };
  draw();
})();
