/* The selector shows one block's traces at a time in a section's selectable figures
   (traces marked fixed, such as the unit circle, stay). */
for (const select of document.querySelectorAll('select.block-selector')) {
  const section = document.getElementById(select.dataset.section);
  function show() {
    for (const div of section.querySelectorAll('div[data-selectable]')) {
      Plotly.restyle(div, { visible: div.data.map(t => t.meta === 'fixed' || t.name === select.value) });
    }
  }
  select.addEventListener('change', show);
  show();
}
