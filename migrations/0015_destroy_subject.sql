-- WorkerDestroyRequested moved from hodei.evt.worker.destroy to
-- hodei.evt.provision.destroy, under the prefix the provisioner's consumer
-- filters (hodei.evt.provision.>). Rows not yet published take the new
-- subject, so no destroy request waiting in the outbox is missed after the
-- upgrade. (One already on JetStream under the old subject and not yet
-- consumed is passed over: its worker is TERMINATING, so the edge tells it
-- to drain and it leaves by itself; the provisioner's reconciliation then
-- records it TERMINATED.)
UPDATE outbox SET subject = 'hodei.evt.provision.destroy'
 WHERE subject = 'hodei.evt.worker.destroy' AND published_at IS NULL;
