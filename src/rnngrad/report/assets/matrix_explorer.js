/* The matrix explorer: W = V (s R(theta)) V^-1, V = [[1, m], [0, 1]], from three sliders
   (eigenvalues s e^(+-i theta), non-normal for m != 0 unless theta = 0 or pi); in the page
   its eigenvalues on the unit circle, its singular values, log10 ||W^j|| and the
   log10 ||dh_T/dh_j||_2 of the linear and the tanh network h_t = phi(W h_{t-1} + u_t)
   along the stored inputs: the recursions of rnngrad.spectrum and rnngrad.jacobians
   (derivatives as log sech^2, products renormalised, scales kept as logarithms). */
(function () {
  const U = REPORT.sections.spectrum.numbers.matrix_explorer_inputs;
  const LN10 = Math.log(10);
  function logSech2(z) { const a = Math.abs(z); return 2 * (Math.log(2) - a - Math.log1p(Math.exp(-2 * a))); }
  function matrix(p) {  // V (s R(theta)) V^-1 with V = [[1, m], [0, 1]]
    const c = Math.cos(p.theta), s = Math.sin(p.theta);
    return [[p.s * (c + p.m * s), -p.s * s * (1 + p.m * p.m)], [p.s * s, p.s * (c - p.m * s)]];
  }
  function mul(A, B) {
    return [[A[0][0] * B[0][0] + A[0][1] * B[1][0], A[0][0] * B[0][1] + A[0][1] * B[1][1]],
            [A[1][0] * B[0][0] + A[1][1] * B[1][0], A[1][0] * B[0][1] + A[1][1] * B[1][1]]];
  }
  function singular(A) {
    const S = A[0][0] ** 2 + A[0][1] ** 2 + A[1][0] ** 2 + A[1][1] ** 2;
    const det = Math.abs(A[0][0] * A[1][1] - A[0][1] * A[1][0]);
    const top = Math.sqrt((S + Math.sqrt(Math.max(S * S - 4 * det * det, 0))) / 2);
    return [top, top > 0 ? det / top : 0];
  }
  function eigen(A) {
    const half = (A[0][0] + A[1][1]) / 2, det = A[0][0] * A[1][1] - A[0][1] * A[1][0];
    const disc = half * half - det;
    if (disc >= 0) { const r = Math.sqrt(disc); return [[half + r, 0], [half - r, 0]]; }
    const i = Math.sqrt(-disc); return [[half, i], [half, -i]];
  }
  function normalised(A) {  // A / ||A||_F and log10 ||A||_F
    const f = Math.hypot(A[0][0], A[0][1], A[1][0], A[1][1]);
    if (f === 0) return [A, -Infinity];
    return [[[A[0][0] / f, A[0][1] / f], [A[1][0] / f, A[1][1] / f]], Math.log10(f)];
  }
  function powers(W, T) {  // log10 ||W^j||_2, j = 1..T
    let P = [[1, 0], [0, 1]], scale = 0; const out = [];
    for (let j = 1; j <= T; j++) {
      const [Q, s] = normalised(mul(W, P)); P = Q; scale += s;
      out.push(scale + Math.log10(singular(P)[0]));
    }
    return out;
  }
  function products(W, T, tanh) {  // log10 ||dh_T/dh_k||_2, k = 1..T (0 at k = T)
    let h = [0, 0]; const logd = [];
    for (let t = 0; t < T; t++) {
      const z = [W[0][0] * h[0] + W[0][1] * h[1] + U[t][0], W[1][0] * h[0] + W[1][1] * h[1] + U[t][1]];
      logd.push(tanh ? [logSech2(z[0]), logSech2(z[1])] : [0, 0]);
      h = tanh ? [Math.tanh(z[0]), Math.tanh(z[1])] : z;
    }
    const out = new Array(T); out[T - 1] = 0;
    let P = [[1, 0], [0, 1]], scale = 0;
    for (let t = T - 1; t >= 1; t--) {  // P <- P J_{t+1}, J = diag(phi'(z)) W
      const m = Math.max(logd[t][0], logd[t][1]);
      const J = [[Math.exp(logd[t][0] - m) * W[0][0], Math.exp(logd[t][0] - m) * W[0][1]],
                 [Math.exp(logd[t][1] - m) * W[1][0], Math.exp(logd[t][1] - m) * W[1][1]]];
      const [Q, s] = normalised(mul(P, J)); P = Q; scale += s + m / LN10;
      out[t - 1] = scale + Math.log10(singular(P)[0]);
    }
    return out;
  }
  function params() {
    const get = id => parseFloat(document.getElementById(id).value);
    return { theta: get('mx-theta'), s: get('mx-s'), m: get('mx-m'), T: Math.round(get('mx-T')) };
  }
  function compute(p) {
    const W = matrix(p);
    return { W: W, eigenvalues: eigen(W), singular: singular(W), powers: powers(W, p.T),
             linear: products(W, p.T, false), tanh: products(W, p.T, true) };
  }
  function draw() {
    const p = params(), r = compute(p);
    for (const key of ['theta', 's', 'm', 'T']) document.getElementById('mx-' + key + '-value').textContent = p[key];
    const rho = Math.max(...r.eigenvalues.map(e => Math.hypot(e[0], e[1])));
    const peak = Math.max(...r.powers);
    document.getElementById('mx-numbers').textContent =
      TEXT.eigenvalues + ' ' + r.eigenvalues.map(e => e[0].toFixed(3) + (e[1] >= 0 ? '+' : '') + e[1].toFixed(3) + 'i').join(', ') +
      '; rho = ' + rho.toFixed(3) + '; ' + TEXT.singular_values + ' ' + r.singular.map(v => v.toFixed(3)).join(', ') +
      '; ' + TEXT.largest_power + ' = 10^' + peak.toFixed(2);
    const angle = []; for (let i = 0; i <= 180; i++) angle.push(2 * Math.PI * i / 180);
    Plotly.react('mx-eigen', [
      { type: 'scatter', mode: 'lines', name: TEXT.unit_circle, x: angle.map(Math.cos), y: angle.map(Math.sin), line: { dash: 'dash' } },
      { type: 'scatter', mode: 'markers', name: TEXT.eigenvalues, x: r.eigenvalues.map(e => e[0]), y: r.eigenvalues.map(e => e[1]), marker: { size: 10 } }
    ], { title: { text: TEXT.eigenvalues_of_w }, xaxis: { title: { text: 'Re' } }, yaxis: { title: { text: 'Im' }, scaleanchor: 'x' },
         height: 340, margin: { l: 50, r: 20, t: 40, b: 40 }, showlegend: false });
    const steps = []; for (let j = 1; j <= p.T; j++) steps.push(j);
    const back = steps.map(j => p.T - j);
    Plotly.react('mx-growth', [
      { type: 'scatter', mode: 'lines', name: '||W^j||', x: steps, y: r.powers },
      { type: 'scatter', mode: 'lines', name: TEXT.linear, x: back, y: r.linear, line: { dash: 'dash' } },
      { type: 'scatter', mode: 'lines', name: TEXT.tanh, x: back, y: r.tanh }
    ], { title: { text: TEXT.norms_title }, xaxis: { title: { text: TEXT.steps_axis } },
         yaxis: { title: { text: 'log10' } }, height: 340, margin: { l: 60, r: 20, t: 40, b: 40 } });
  }
  for (const key of ['theta', 's', 'm', 'T']) document.getElementById('mx-' + key).addEventListener('input', draw);
  window.rnngradMatrixExplorer = { compute: compute, draw: draw };
  draw();
})();
