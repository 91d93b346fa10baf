// On a phone, a result table wider than the column becomes one card per row (issue 21): each value beside its
// column's name (the data-label that book/_ext/table_caption.py puts on every cell; the cards are drawn by
// poprisk.css). A table that fits stays a table, and on a wider screen a wide table keeps its scroll box and cue.
(() => {
  const phone = window.matchMedia("(max-width: 600px)");
  const fit = () => {
    for (const box of document.querySelectorAll(".poprisk-table")) {
      box.classList.remove("poprisk-stacked");
      const scroller = box.querySelector(".poprisk-scroll") || box;
      const table = box.querySelector("table");
      if (phone.matches && table && table.scrollWidth > scroller.clientWidth + 1) {
        box.classList.add("poprisk-stacked");
      }
    }
  };
  let pending = 0;
  const later = () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(fit); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fit);
  else fit();
  window.addEventListener("resize", later);
  phone.addEventListener("change", later);
})();
