// Workbench bar charts; clicking a bar opens the list of the opportunities behind it.
(function () {
  var source = document.getElementById("chart-data");
  if (!source || !window.echarts) return;
  var data = JSON.parse(JSON.parse(source.textContent));
  function bar(id, chart) {
    var el = document.getElementById(id);
    if (!el || !chart) return;
    var c = echarts.init(el);
    c.setOption({
      tooltip: { trigger: "axis", valueFormatter: function (v) { return "¥" + Number(v).toLocaleString(); } },
      grid: { left: 8, right: 8, bottom: 8, top: 24, containLabel: true },
      xAxis: { type: "category", data: chart.labels, axisLabel: { interval: 0, rotate: chart.labels.length > 5 ? 30 : 0 } },
      yAxis: { type: "value" },
      series: [{ name: chart.series, type: "bar", data: chart.values, barMaxWidth: 64, itemStyle: { color: "#0d6efd" },
                 label: { show: true, position: "top", formatter: function (p) { return chart.counts[p.dataIndex]; } } }]
    });
    c.on("click", function (p) { window.location.href = chart.links[p.dataIndex]; });
    window.addEventListener("resize", function () { c.resize(); });
  }
  bar("chart-stage", data.stage_chart);
  bar("chart-region", data.region_chart);
})();
