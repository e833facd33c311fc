package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// volumeProvisionerName is the StorageClass's provisioner: the test process.
const volumeProvisionerName = "storefleet.io/local-path"

// volumeProvisioner gives each claim of the node's StorageClass a folder under
// the node's volumes directory, as a hostPath PersistentVolume bound to the
// claim, and removes folder and volume once the claim is gone (reclaim policy
// Delete). It runs in the test process, which is root on the host the node's
// folders are on, so it needs no helper Pods; it replaced Rancher's
// local-path-provisioner, whose build was 255 s of a cold CI run for these few
// dozen lines (docs/node.md, "Cold cost"). Like it, it cannot size a volume.
type volumeProvisioner struct {
	n      *Node
	cancel context.CancelFunc
	done   sync.WaitGroup
	logf   func(string, ...any)
}

// startVolumes makes the StorageClass the cluster's default and starts the
// provisioner's loop.
func (n *Node) startVolumes(ctx context.Context) error {
	class := fmt.Sprintf(`apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: %s
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: %s
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
allowVolumeExpansion: true
`, StorageClassName, volumeProvisionerName)
	if err := n.env.Apply(ctx, []byte(class)); err != nil {
		return fmt.Errorf("node: storage class: %w", err)
	}
	if err := os.MkdirAll(n.path("volumes"), 0o755); err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	p := &volumeProvisioner{n: n, cancel: cancel, logf: n.env.logf}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			if err := p.round(loopCtx); err != nil && loopCtx.Err() == nil {
				p.logf("node: volumes: %v (retried)", err)
			}
			select {
			case <-loopCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	n.volumes = p
	return nil
}

// round provisions every claim the scheduler placed on the node and deletes
// every released volume.
func (p *volumeProvisioner) round(ctx context.Context) error {
	c := p.n.env.Client
	var errs []error
	var claims corev1.PersistentVolumeClaimList
	if err := c.List(ctx, &claims); err != nil {
		return err
	}
	for i := range claims.Items {
		pvc := &claims.Items[i]
		if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil ||
			pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != StorageClassName ||
			pvc.Annotations["volume.kubernetes.io/selected-node"] != p.n.Name {
			continue
		}
		errs = append(errs, p.provision(ctx, pvc))
	}
	var vols corev1.PersistentVolumeList
	if err := c.List(ctx, &vols); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for i := range vols.Items {
		pv := &vols.Items[i]
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] != volumeProvisionerName || pv.DeletionTimestamp != nil ||
			(pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed) ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.HostPath == nil {
			continue
		}
		dir := pv.Spec.HostPath.Path
		if !strings.HasPrefix(dir, p.n.path("volumes")+string(filepath.Separator)) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.Delete(ctx, pv); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// provision makes the claim's folder and a volume bound to the claim (the PV
// controller completes the binding). The folder is world-writable: the shops'
// containers run as their own users (999, 1000).
func (p *volumeProvisioner) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	name := "pvc-" + string(pvc.UID)
	dir := p.n.path("volumes", name+"_"+pvc.Namespace+"_"+pvc.Name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	hostPathType := corev1.HostPathDirectory
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": volumeProvisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              StorageClassName,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{p.n.Name},
				}}}},
			}},
		},
	}
	if err := p.n.env.Client.Create(ctx, pv); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("volume for %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}

// Close stops the loop; the folders go with the node's directory.
func (p *volumeProvisioner) Close() error {
	p.cancel()
	p.done.Wait()
	return nil
}
