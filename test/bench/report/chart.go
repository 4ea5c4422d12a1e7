package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// barGroup is one series of a grouped bar chart.
type barGroup struct {
	Name   string
	Values []float64
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// barChart draws grouped bars: one group per category, one bar per series.
func barChart(path, title, yLabel string, categories []string, groups []barGroup) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	w := vg.Points(14)
	for i, g := range groups {
		vals := make(plotter.Values, len(g.Values))
		copy(vals, g.Values)
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		b.LineStyle.Width = vg.Length(0)
		b.Color = palette[i%len(palette)]
		b.Offset = vg.Length(float64(i)-float64(len(groups)-1)/2) * w
		p.Add(b)
		p.Legend.Add(g.Name, b)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(categories...)
	return p.Save(6*vg.Inch, 3.5*vg.Inch, path)
}

// lineChart draws one line per series over shared x values.
func lineChart(path, title, xLabel, yLabel string, xs []float64, series []barGroup) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for i, s := range series {
		pts := make(plotter.XYs, len(xs))
		for j := range xs {
			pts[j].X, pts[j].Y = xs[j], s.Values[j]
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		l.Color = palette[i%len(palette)]
		sc.Color = l.Color
		p.Add(l, sc)
		p.Legend.Add(s.Name, l)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p.Save(6*vg.Inch, 3.5*vg.Inch, path)
}
