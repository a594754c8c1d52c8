/* The scalar explorer of section 1: log10 |dy/dh_k| of h_t = tanh(a h_{t-1} + b x_t + c),
   y = d h_T, and its bound, recomputed in the browser from the sliders with the same
   log-space recursion as rnngrad.scalar_chain_rule (derivatives as log sech^2), on the
   inputs stored in the page. */
(function () {
  const X = REPORT.explorer_inputs;
  const LN10 = Math.log(10);
  function logSech2(z) { const a = Math.abs(z); return 2 * (Math.log(2) - a - Math.log1p(Math.exp(-2 * a))); }
  function compute(p) {
    const T = p.T; let h = 0; const z = [];
    for (let t = 0; t < T; t++) { const v = p.a * h + (p.b * X[t] + p.c); z.push(v); h = Math.tanh(v); }
    const logA = Math.log10(Math.abs(p.a)); const logD = Math.log10(Math.abs(p.d));
    const factors = []; for (let t = 1; t < T; t++) factors.push(logA + logSech2(z[t]) / LN10);
    const grad = new Array(T); let tail = 0; grad[T - 1] = logD;
    for (let k = T - 2; k >= 0; k--) { tail += factors[k]; grad[k] = logD + tail; }
    const bound = []; for (let k = 0; k < T; k++) bound.push(logD + (T - 1 - k) * logA);
    const ks = []; for (let k = 1; k <= T; k++) ks.push(k);
    return { k: ks, grad: grad, bound: bound };
  }
  function params() {
    const get = id => parseFloat(document.getElementById(id).value);
    return { a: get('ex-a'), b: get('ex-b'), c: get('ex-c'), d: get('ex-d'), T: Math.round(get('ex-T')) };
  }
  function draw() {
    const p = params();
    for (const key of ['a', 'b', 'c', 'd', 'T']) document.getElementById('ex-' + key + '-value').textContent = p[key];
    const r = compute(p);
    const data = [
      { type: 'scatter', mode: 'lines+markers', name: TEXT.gradient, x: r.k, y: r.grad },
      { type: 'scatter', mode: 'lines', name: TEXT.bound, x: r.k, y: r.bound, line: { dash: 'dash' } }
    ];
    Plotly.react('explorer', data, { title: { text: TEXT.explorer_title },
      xaxis: { title: { text: 'k' } }, yaxis: { title: { text: 'log10' } }, height: 360,
      margin: { l: 60, r: 20, t: 40, b: 50 } });
  }
  for (const key of ['a', 'b', 'c', 'd', 'T']) document.getElementById('ex-' + key).addEventListener('input', draw);
  window.rnngradExplorer = { compute: compute, draw: draw };
  draw();
})();
