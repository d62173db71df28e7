package main

// NetworkPolicy enforcement with iptables (filter table), for the pods on this node.
//
// FORWARD jumps to FLOE-NP first. FLOE-NP lets established/related traffic through, then sends traffic
// from each local pod that an Egress policy selects to its FLOE-OUT-<id> chain and traffic to each local
// pod that an Ingress policy selects to its FLOE-IN-<id> chain. Those chains mark allowed packets
// (0x10000) and reject the rest; allowed packets RETURN, so other FORWARD rules (kube-proxy's) still apply.
// Traffic from the node itself (kubelet probes) does not pass FORWARD and is never blocked.
//
// The rule text is a pure function of pods, namespaces and policies (rules()); main applies it with
// iptables-restore --noflush only when it changes.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

const (
	npChain  = "FLOE-NP"
	markBit  = "0x10000/0x10000"
	markZero = "0/0x10000"
)

type labelSelector struct {
	MatchLabels      map[string]string `json:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"matchExpressions"`
}

// matches reports whether labels satisfy the selector; a nil selector matches nothing, an empty one all.
func (s *labelSelector) matches(labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		got, ok := labels[e.Key]
		in := false
		for _, v := range e.Values {
			in = in || (ok && got == v)
		}
		switch e.Operator {
		case "In":
			if !in {
				return false
			}
		case "NotIn":
			if in {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

type meta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

type pod struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		NodeName    string `json:"nodeName"`
		HostNetwork bool   `json:"hostNetwork"`
		Containers  []struct {
			Ports []struct {
				Name          string `json:"name"`
				ContainerPort int    `json:"containerPort"`
				Protocol      string `json:"protocol"`
			} `json:"ports"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		PodIP string `json:"podIP"`
		Phase string `json:"phase"`
	} `json:"status"`
}

type namespace struct {
	Metadata meta `json:"metadata"`
}

type policyPort struct {
	Protocol string `json:"protocol"`
	Port     any    `json:"port"` // number or name
	EndPort  int    `json:"endPort"`
}

type ipBlock struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except"`
}

type peer struct {
	PodSelector       *labelSelector `json:"podSelector"`
	NamespaceSelector *labelSelector `json:"namespaceSelector"`
	IPBlock           *ipBlock       `json:"ipBlock"`
}

type policyRule struct {
	Peers []peer       // from (ingress) or to (egress); nil = everyone
	Ports []policyPort // nil = all ports
}

type networkPolicy struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		PodSelector labelSelector `json:"podSelector"`
		PolicyTypes []string      `json:"policyTypes"`
		Ingress     []struct {
			From  []peer       `json:"from"`
			Ports []policyPort `json:"ports"`
		} `json:"ingress"`
		Egress []struct {
			To    []peer       `json:"to"`
			Ports []policyPort `json:"ports"`
		} `json:"egress"`
	} `json:"spec"`
}

func (p *networkPolicy) types() (ingress, egress bool) {
	if len(p.Spec.PolicyTypes) == 0 {
		return true, len(p.Spec.Egress) > 0
	}
	for _, t := range p.Spec.PolicyTypes {
		ingress = ingress || t == "Ingress"
		egress = egress || t == "Egress"
	}
	return ingress, egress
}

func chainID(kind string, p *pod) string {
	sum := sha256.Sum256([]byte(p.Metadata.Namespace + "/" + p.Metadata.Name))
	return "FLOE-" + kind + "-" + hex.EncodeToString(sum[:])[:14] // ≤ 23 chars: room for "-<n>" sub-chains
}

type world struct {
	pods       []pod
	namespaces map[string]map[string]string // name -> labels
	policies   []networkPolicy
}

// peerIPs are the pods a peer selects (relative to the policy's namespace), as ip -> pod.
func (w *world) peerPods(pe peer, policyNS string) []*pod {
	var out []*pod
	for i := range w.pods {
		p := &w.pods[i]
		if p.Status.PodIP == "" || p.Spec.HostNetwork || p.Status.Phase == "Succeeded" || p.Status.Phase == "Failed" {
			continue
		}
		nsOK := false
		if pe.NamespaceSelector != nil {
			nsOK = pe.NamespaceSelector.matches(w.namespaces[p.Metadata.Namespace])
		} else {
			nsOK = p.Metadata.Namespace == policyNS
		}
		podOK := pe.PodSelector == nil || pe.PodSelector.matches(p.Metadata.Labels)
		if nsOK && podOK {
			out = append(out, p)
		}
	}
	return out
}

// portMatches renders the -p/--dport parts of one policy port for a destination pod ("" = all ports),
// or ok=false when a named port does not exist on that pod.
func portMatches(pp policyPort, dest *pod) (string, bool) {
	proto := strings.ToLower(pp.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	switch v := pp.Port.(type) {
	case nil:
		return "-p " + proto, true
	case float64:
		if pp.EndPort > 0 {
			return fmt.Sprintf("-p %s -m %s --dport %d:%d", proto, proto, int(v), pp.EndPort), true
		}
		return fmt.Sprintf("-p %s -m %s --dport %d", proto, proto, int(v)), true
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return fmt.Sprintf("-p %s -m %s --dport %d", proto, proto, n), true
		}
		if dest == nil {
			return "", false
		}
		for _, c := range dest.Spec.Containers {
			for _, cp := range c.Ports {
				cpProto := strings.ToLower(cp.Protocol)
				if cpProto == "" {
					cpProto = "tcp"
				}
				if cp.Name == v && cpProto == proto {
					return fmt.Sprintf("-p %s -m %s --dport %d", proto, proto, cp.ContainerPort), true
				}
			}
		}
	}
	return "", false
}

// ruleLines renders one policy rule as iptables rules that set the allow mark in chain (and in sub-chains
// for ipBlocks with exceptions, whose names are appended to subs). dir is "-s" (ingress: match the
// source) or "-d" (egress: match the destination); self is the local pod the chain is for.
func (w *world) ruleLines(chain, dir string, r policyRule, policyNS string, self *pod, subs *[]string) []string {
	var lines []string
	emit := func(target, match string, dest *pod) {
		if len(r.Ports) == 0 {
			lines = append(lines, fmt.Sprintf("-A %s %s-j MARK --set-xmark %s", target, match, markBit))
			return
		}
		for _, pp := range r.Ports {
			if ports, ok := portMatches(pp, dest); ok {
				lines = append(lines, fmt.Sprintf("-A %s %s%s -j MARK --set-xmark %s", target, match, ports, markBit))
			}
		}
	}
	// The pod whose named ports a rule refers to: the local pod for ingress, the peer for egress
	// (unknown for ipBlocks and "anywhere", where only numbered ports can apply).
	dest := func(peerPod *pod) *pod {
		if dir == "-s" {
			return self
		}
		return peerPod
	}
	if r.Peers == nil {
		emit(chain, "", dest(nil))
		return lines
	}
	for _, pe := range r.Peers {
		switch {
		case pe.IPBlock != nil && len(pe.IPBlock.Except) > 0:
			sub := fmt.Sprintf("%s-%d", chain, len(*subs))
			*subs = append(*subs, sub)
			lines = append(lines, fmt.Sprintf("-A %s %s %s -j %s", chain, dir, pe.IPBlock.CIDR, sub))
			for _, ex := range pe.IPBlock.Except {
				lines = append(lines, fmt.Sprintf("-A %s %s %s -j RETURN", sub, dir, ex))
			}
			emit(sub, "", dest(nil))
		case pe.IPBlock != nil:
			emit(chain, fmt.Sprintf("%s %s ", dir, pe.IPBlock.CIDR), dest(nil))
		default:
			for _, p := range w.peerPods(pe, policyNS) {
				emit(chain, fmt.Sprintf("%s %s/32 ", dir, p.Status.PodIP), dest(p))
			}
		}
	}
	return lines
}

// rules renders the filter-table state for the pods on node (iptables-restore --noflush input) and the
// names of the chains it defines.
func (w *world) rules(node string) (string, []string) {
	chains := []string{npChain}
	jumps := []string{fmt.Sprintf("-A %s -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN", npChain)}
	var body []string
	var local []*pod
	for i := range w.pods {
		p := &w.pods[i]
		if p.Spec.NodeName == node && p.Status.PodIP != "" && !p.Spec.HostNetwork &&
			p.Status.Phase != "Succeeded" && p.Status.Phase != "Failed" {
			local = append(local, p)
		}
	}
	sort.Slice(local, func(i, j int) bool { return local[i].Status.PodIP < local[j].Status.PodIP })
	for _, self := range local {
		for _, dir := range []string{"OUT", "IN"} {
			var selected []policyRule
			isolated := false
			for _, np := range w.policies {
				if np.Metadata.Namespace != self.Metadata.Namespace || !np.Spec.PodSelector.matches(self.Metadata.Labels) {
					continue
				}
				ingress, egress := np.types()
				if dir == "IN" && ingress {
					isolated = true
					for _, r := range np.Spec.Ingress {
						selected = append(selected, policyRule{Peers: r.From, Ports: r.Ports})
					}
				}
				if dir == "OUT" && egress {
					isolated = true
					for _, r := range np.Spec.Egress {
						selected = append(selected, policyRule{Peers: r.To, Ports: r.Ports})
					}
				}
			}
			if !isolated {
				continue
			}
			chain := chainID(dir, self)
			chains = append(chains, chain)
			selfMatch, peerDir := "-d", "-s"
			if dir == "OUT" {
				selfMatch, peerDir = "-s", "-d"
			}
			jumps = append(jumps, fmt.Sprintf("-A %s %s %s/32 -j %s", npChain, selfMatch, self.Status.PodIP, chain))
			var subs []string
			for _, r := range selected {
				body = append(body, w.ruleLines(chain, peerDir, r, self.Metadata.Namespace, self, &subs)...)
			}
			chains = append(chains, subs...)
			body = append(body,
				fmt.Sprintf("-A %s -m mark ! --mark %s -m comment --comment \"%s/%s: %s denied by NetworkPolicy\" -j REJECT",
					chain, markBit, self.Metadata.Namespace, self.Metadata.Name, map[string]string{"IN": "ingress", "OUT": "egress"}[dir]),
				fmt.Sprintf("-A %s -j MARK --set-xmark %s", chain, markZero))
		}
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, c := range chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, l := range append(jumps, body...) {
		b.WriteString(l + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String(), chains
}
