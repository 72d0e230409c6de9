-- frame_speech: for every sampled frame of every lecture, whether someone was speaking at that
-- moment (the frame's pts_s inside a stretch of the speech/ table); null for a lecture whose audio
-- was not analysed (lectures.speech not 'done': no audio track, a broken one, the speech signal
-- off, or records from before speech was analysed). Registered by fer_stream.reports.connect after
-- the lectures, frames and speech views.
create or replace temp view frame_speech as

with

frames_in as (
    select frames.video_id, frames.frame_index, frames.pts_s, lectures.speech = 'done' as heard
    from frames
    inner join lectures on frames.video_id = lectures.video_id
),

final as (
    select
        frames_in.video_id,
        frames_in.frame_index,
        frames_in.pts_s,
        case when frames_in.heard then count(speech.start_s) > 0 end as speaking
    from frames_in
    left join speech
        on frames_in.heard
        and speech.video_id = frames_in.video_id
        and frames_in.pts_s >= speech.start_s
        and frames_in.pts_s < speech.end_s
    group by frames_in.video_id, frames_in.frame_index, frames_in.pts_s, frames_in.heard
)

select * from final;
