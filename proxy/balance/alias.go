package balance

// alias is one slot of Vose's alias table: weighted sampling in O(1) per
// draw, which keeps p2c constant-time however large the pool.
type alias struct {
	prob  uint64 // keep this slot when the low 32 bits of the draw are below prob (scale 2^32)
	other int32  // otherwise take this member
}

func buildAlias(ms []member) []alias {
	n := len(ms)
	t := make([]alias, n)
	if n == 0 {
		return t
	}
	var sum float64
	for _, m := range ms {
		sum += m.w
	}
	p := make([]float64, n)
	small := make([]int, 0, n)
	large := make([]int, 0, n)
	for i, m := range ms {
		p[i] = m.w * float64(n) / sum
		if p[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t[s] = alias{prob: uint64(p[s] * (1 << 32)), other: int32(l)}
		p[l] -= 1 - p[s]
		if p[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left is 1 up to rounding: always keep.
	for _, i := range large {
		t[i] = alias{prob: 1 << 32, other: int32(i)}
	}
	for _, i := range small {
		t[i] = alias{prob: 1 << 32, other: int32(i)}
	}
	return t
}

// sample draws a member index from r: the high 32 bits pick a slot
// (multiply-shift, no modulo bias worth the name), the low 32 the coin.
func sample(t []alias, r uint64) int {
	i := int(((r >> 32) * uint64(len(t))) >> 32)
	if r&0xffffffff < t[i].prob {
		return i
	}
	return int(t[i].other)
}
