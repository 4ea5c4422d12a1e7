package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
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

// xySeries is one line of xyChart over its own points.
type xySeries struct {
	Name string
	X, Y []float64
	// Color indexes the palette; Dashed draws a dashed line; PointsOnly
	// draws the points alone.
	Color      int
	Dashed     bool
	PointsOnly bool
}

// xyChart draws series over a logarithmic x axis, and refs (such as a
// target) as thin grey dashed lines, with the legend right of the plot. The
// y axis is logarithmic too when the values span more than a factor of 20.
// The format follows path's extension (.svg, .png).
func xyChart(path, title, xLabel, yLabel string, series, refs []xySeries) error {
	p := plot.New()
	legend := plot.NewLegend()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range append(slices.Clone(series), refs...) {
		for _, y := range s.Y {
			lo, hi = min(lo, y), max(hi, y)
		}
	}
	if lo > 0 && hi/lo > 20 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		// Down to a power of ten, so the axis has a labelled tick.
		p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	} else {
		p.Y.Min = 0
	}
	for _, s := range series {
		if len(s.X) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(s.X))
		for j := range s.X {
			pts[j].X, pts[j].Y = s.X[j], s.Y[j]
		}
		c := palette[s.Color%len(palette)]
		if s.PointsOnly {
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return fmt.Errorf("%s: %w", title, err)
			}
			sc.Color, sc.Shape, sc.Radius = c, draw.CrossGlyph{}, vg.Points(4)
			p.Add(sc)
			legend.Add(s.Name, sc)
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		l.Color, sc.Color = c, c
		if s.Dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			sc.Shape = draw.BoxGlyph{}
		}
		p.Add(l, sc)
		legend.Add(s.Name, l, sc)
	}
	for _, r := range refs {
		pts := make(plotter.XYs, len(r.X))
		for j := range r.X {
			pts[j].X, pts[j].Y = r.X[j], r.Y[j]
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		l.Color = color.Gray{Y: 0x80}
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
		legend.Add(r.Name, l)
	}
	legend.Top, legend.Left = true, true
	const w, h, legendW = 8 * vg.Inch, 4.5 * vg.Inch, 2 * vg.Inch
	c, err := draw.NewFormattedCanvas(w, h, strings.TrimPrefix(filepath.Ext(path), "."))
	if err != nil {
		return fmt.Errorf("%s: %w", title, err)
	}
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	legend.Draw(draw.Crop(draw.Crop(dc, w-legendW, 0, 0, 0), vg.Points(8), 0, 0, -vg.Points(24)))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		_ = f.Close() // the write failed: that is the error to report
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
