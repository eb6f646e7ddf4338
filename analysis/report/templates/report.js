// Click a column header of a table.sortable to sort its rows; click again to reverse.
// Cells sort by their data-value attribute (full-precision numbers) or their text; empty
// values (missing results) always go last, whichever the direction.
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var value = cell.getAttribute("data-value");
    return value === null ? cell.textContent.trim() : value;
  }
  function sortTable(table, index, header) {
    var headers = table.tHead.rows[table.tHead.rows.length - 1].cells;
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    for (var h = 0; h < headers.length; h++) { headers[h].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, position) {
      var raw = cellValue(row, index);
      var key = raw === "" ? null : (numeric ? parseFloat(raw) : raw.toLowerCase());
      if (numeric && key !== null && isNaN(key)) { key = null; }
      return { row: row, key: key, position: position };
    });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        if (a.key === b.key) { return a.position - b.position; }
        return a.key === null ? 1 : -1;
      }
      var order = numeric ? a.key - b.key : a.key.localeCompare(b.key);
      if (order === 0) { return a.position - b.position; }
      return ascending ? order : -order;
    });
    rows.forEach(function (entry) { body.appendChild(entry.row); });
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var headers = table.tHead.rows[table.tHead.rows.length - 1].cells;
    Array.prototype.forEach.call(headers, function (header, index) {
      header.setAttribute("tabindex", "0");
      header.addEventListener("click", function () { sortTable(table, index, header); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortTable(table, index, header); }
      });
    });
  });
})();
