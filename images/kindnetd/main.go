// Command kindnetd is floe-testinfra's minimal stand-in for kind's kindnetd, for air-gapped node images.
//
// It does what a Kind cluster needs from its CNI daemon, and no more:
//   - writes /etc/cni/net.d/10-kindnet.conflist (ptp + host-local for this node's podCIDR, portmap),
//   - routes every other node's podCIDR via that node's InternalIP (multi-node clusters),
//   - masquerades traffic from the pod subnet to destinations outside it.
//
// It reads nodes from the Kubernetes API with the pod's service account (standard library only) every
// few seconds. It does not enforce NetworkPolicy (kind's kindnetd does); see docs/guides/air-gapped.md.
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

func listNodes(c *http.Client, base string) (*nodeList, error) {
	token, err := os.ReadFile(filepath.Join(saDir, "token")) // re-read: projected tokens rotate
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/nodes", nil)
	req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/nodes: %s", resp.Status)
	}
	var nodes nodeList
	return &nodes, json.NewDecoder(resp.Body).Decode(&nodes)
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
	nodes, err := listNodes(c, base)
	if err != nil {
		return err
	}
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
		return ensureMasquerade(podSubnet)
	}
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
