// Command kindnetd is floe-testinfra's minimal stand-in for kind's kindnetd, for air-gapped node images.
//
// It does what a Kind cluster needs from its CNI daemon, and no more:
//   - writes /etc/cni/net.d/10-kindnet.conflist (ptp + host-local for this node's podCIDR, portmap),
//   - routes every other node's podCIDR via that node's InternalIP (multi-node clusters),
//   - masquerades traffic from the pod subnet to destinations outside it,
//   - enforces NetworkPolicy (ingress and egress) for this node's pods with iptables (netpol.go).
//
// It reads nodes, pods, namespaces and NetworkPolicies from the Kubernetes API with the pod's service
// account (standard library only) every few seconds.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	saDir    = "/var/run/secrets/kubernetes.io/serviceaccount"
	cniPath  = "/etc/cni/net.d/10-kindnet.conflist"
	interval = 5 * time.Second
)

type nodeList struct {
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			PodCIDR  string   `json:"podCIDR"`
			PodCIDRs []string `json:"podCIDRs"`
		} `json:"spec"`
		Status struct {
			Addresses []struct {
				Type    string `json:"type"`
				Address string `json:"address"`
			} `json:"addresses"`
		} `json:"status"`
	} `json:"items"`
}

func client() (*http.Client, string, error) {
	ca, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, "", fmt.Errorf("KUBERNETES_SERVICE_HOST/PORT are not set: not running in a pod?")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return c, "https://" + net.JoinHostPort(host, port), nil
}

func get(c *http.Client, base, path string, out any) error {
	token, err := os.ReadFile(filepath.Join(saDir, "token")) // re-read: projected tokens rotate
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func cniConfig(podCIDR string) []byte {
	conf := map[string]any{
		"cniVersion": "0.3.1",
		"name":       "kindnet",
		"plugins": []any{
			map[string]any{
				"type": "ptp", "ipMasq": false, "mtu": 1500,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": "/run/cni-ipam-state",
					"routes": []any{map[string]string{"dst": "0.0.0.0/0"}},
					"ranges": []any{[]any{map[string]string{"subnet": podCIDR}}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	out, _ := json.MarshalIndent(conf, "", "  ")
	return append(out, '\n')
}

func writeIfChanged(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %v: %s", args, err, bytes.TrimSpace(out))
	}
	return nil
}

func ensureMasquerade(podSubnet string) error {
	rule := []string{"POSTROUTING", "-s", podSubnet, "!", "-d", podSubnet, "-m", "comment",
		"--comment", "floe-kindnetd: pods to outside the pod subnet", "-j", "MASQUERADE"}
	if exec.Command("iptables", append([]string{"-w", "-t", "nat", "-C"}, rule...)...).Run() == nil {
		return nil
	}
	return run(append([]string{"iptables", "-w", "-t", "nat", "-A"}, rule...)...)
}

func sync(c *http.Client, base, hostIP, podSubnet string) error {
	var nodes nodeList
	if err := get(c, base, "/api/v1/nodes", &nodes); err != nil {
		return err
	}
	nodeName := ""
	for _, node := range nodes.Items {
		cidr, ip := node.Spec.PodCIDR, ""
		for _, a := range node.Status.Addresses {
			if a.Type == "InternalIP" && net.ParseIP(a.Address).To4() != nil {
				ip = a.Address
			}
		}
		if cidr == "" || ip == "" {
			continue
		}
		if ip == hostIP {
			nodeName = node.Metadata.Name
			if changed, err := writeIfChanged(cniPath, cniConfig(cidr)); err != nil {
				return err
			} else if changed {
				log.Printf("wrote %s for podCIDR %s", cniPath, cidr)
			}
			continue
		}
		if err := run("ip", "route", "replace", cidr, "via", ip); err != nil {
			return err
		}
	}
	if podSubnet != "" {
		if err := ensureMasquerade(podSubnet); err != nil {
			return err
		}
	}
	if nodeName == "" {
		return fmt.Errorf("no node has InternalIP %s yet", hostIP)
	}
	return syncPolicies(c, base, nodeName)
}

var lastPolicyRules string

// syncPolicies enforces NetworkPolicies for this node's pods (netpol.go), re-applying only on change.
func syncPolicies(c *http.Client, base, nodeName string) error {
	var pods struct{ Items []pod }
	var namespaces struct{ Items []namespace }
	var policies struct{ Items []networkPolicy }
	for path, out := range map[string]any{"/api/v1/pods": &pods, "/api/v1/namespaces": &namespaces,
		"/apis/networking.k8s.io/v1/networkpolicies": &policies} {
		if err := get(c, base, path, out); err != nil {
			return err
		}
	}
	w := world{pods: pods.Items, namespaces: map[string]map[string]string{}, policies: policies.Items}
	for _, ns := range namespaces.Items {
		w.namespaces[ns.Metadata.Name] = ns.Metadata.Labels
	}
	text, chains := w.rules(nodeName)
	if text == lastPolicyRules {
		return nil
	}
	if exec.Command("iptables", "-w", "-t", "filter", "-S", npChain).Run() != nil {
		if err := run("iptables", "-w", "-t", "filter", "-N", npChain); err != nil {
			return err
		}
	}
	if exec.Command("iptables", "-w", "-t", "filter", "-C", "FORWARD", "-j", npChain).Run() != nil {
		if err := run("iptables", "-w", "-t", "filter", "-I", "FORWARD", "1", "-j", npChain); err != nil {
			return err
		}
	}
	saved, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		return fmt.Errorf("iptables-save: %v", err)
	}
	keep := map[string]bool{}
	for _, c := range chains {
		keep[c] = true
	}
	var stale []string
	for _, line := range strings.Split(string(saved), "\n") {
		if strings.HasPrefix(line, ":FLOE-") {
			if name := strings.Fields(line[1:])[0]; !keep[name] {
				stale = append(stale, name)
			}
		}
	}
	input := strings.TrimSuffix(text, "COMMIT\n")
	for _, name := range stale { // flushed first (declared), deleted last: nothing refers to them then
		input = strings.Replace(input, "*filter\n", "*filter\n:"+name+" - [0:0]\n", 1)
	}
	for _, name := range stale {
		input += "-X " + name + "\n"
	}
	input += "COMMIT\n"
	cmd := exec.Command("iptables-restore", "-w", "--noflush")
	cmd.Stdin = strings.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %v: %s", err, bytes.TrimSpace(out))
	}
	lastPolicyRules = text
	log.Printf("NetworkPolicy rules applied: %d chain(s), %d stale removed", len(chains), len(stale))
	return nil
}

func main() {
	hostIP, podSubnet := os.Getenv("HOST_IP"), os.Getenv("POD_SUBNET")
	if hostIP == "" {
		log.Fatal("HOST_IP is not set (the DaemonSet sets it from status.hostIP)")
	}
	c, base, err := client()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("floe-kindnetd: node %s, pod subnet %q, syncing every %s", hostIP, podSubnet, interval)
	for {
		if err := sync(c, base, hostIP, podSubnet); err != nil {
			log.Printf("sync: %v", err)
		}
		time.Sleep(interval)
	}
}
